"""Date/time columns: detected as their own kind (not text for MiniLM), read as year, month, weekday, hour and days
since 1970, overridable with --column-type, and an unreadable value follows --on-bad-row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmfuse import Predictor
from mmfuse.data.detect import detect_columns
from mmfuse.errors import DataError
from mmfuse.modalities.tabular.dates import date_parts

OPTS = dict(preset="fast", max_epochs=15, threads=2, progress=False, verbose=False, seed=0)


def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """y = 1 on weekends: only the date column's weekday tells."""
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D") \
        + pd.to_timedelta(rng.integers(0, 24, n), unit="h")
    return pd.DataFrame({"when": when.strftime("%Y-%m-%dT%H:%M:%S"), "noise": rng.normal(size=n),
                         "y": (when.day_of_week >= 5).astype(int)})


def test_detected_as_datetime_not_text_or_an_id():
    frame = table().assign(us=lambda f: pd.to_datetime(f["when"]).dt.strftime("%m/%d/%Y"),
                           typed=lambda f: pd.to_datetime(f["when"]))
    kinds = {c.name: c.modality for c in detect_columns(frame, "y", Path("."))}
    assert kinds == {"when": "datetime", "noise": "numeric", "us": "datetime", "typed": "datetime"}


def test_date_parts_in_utc():
    parts = date_parts(pd.Series(["2024-03-02T14:30:00+02:00", "1970-01-02", "", "soon"], name="t"))
    assert parts.iloc[0].tolist() == [2024, 3, 5, 12, pytest.approx(19784.5208, abs=1e-4)]  # Saturday, 12:30 UTC
    assert parts.iloc[1].tolist() == [1970, 1, 4, 0, 1.0]
    assert parts.iloc[2:].isna().all().all()


def test_a_model_learns_from_the_weekday_and_bad_dates_follow_the_policy(tmp_path):
    predictor = Predictor(label="y", **OPTS).fit(table(400, 0), valid=table(100, 1))
    assert [c.modality for c in predictor.columns_] == ["datetime", "numeric"]
    assert predictor.score(table(200, 2)) >= 0.9

    bad = table(200, 3)
    bad.loc[5, "when"] = "the day after tomorrow"
    with pytest.raises(DataError, match=r"row 5, column 'when': not a date/time: 'the day after tomorrow'"):
        Predictor(label="y", **{**OPTS, "on_bad_row": "error"}).fit(bad)
    skipped = Predictor(label="y", **{**OPTS, "max_epochs": 1, "on_bad_row": "skip"}).fit(bad, valid=table(50, 4))
    assert [s["row"] for s in skipped.data_report_["train"]["skipped"]] == [5]
    masked = predictor.predict_frame(bad)
    assert len(masked) == 200 and predictor.prepare(bad)[1].report["columns"]["when"]["masked"]["rows"] == [5]

    from fastapi.testclient import TestClient

    from mmfuse.serve import create_app

    client = TestClient(create_app(predictor.save(tmp_path / "model")))
    field = next(c for c in client.get("/metadata").json()["columns"] if c["name"] == "when")
    assert field["widget"] == "date"  # the page draws a date-and-time input, not a text box
    # what the page's datetime-local input sends (no seconds when they are zero) reads as that date
    served = client.post("/predict", json={"rows": [{"when": "2024-03-02T14:30", "noise": 0.0}]})
    assert served.status_code == 200 and served.json()["predictions"][0]["notes"] == []


def test_column_type_overrides_either_way():
    frame = table(60)
    as_text = Predictor(label="y", column_types={"when": "categorical"}, **{**OPTS, "max_epochs": 1}).fit(frame)
    assert as_text.columns_[0].modality == "categorical"
    frame["code"] = [f"v{i % 7}" for i in range(60)]
    with pytest.raises(DataError, match="column 'code' was set to datetime, but most values are not dates"):
        Predictor(label="y", column_types={"code": "datetime"}, **OPTS).fit(frame)


def test_words_and_bare_numbers_are_not_dates():
    """Only a value that says one date is read: a month's name, now, today, -1 or a year alone were read as dates
    (March as year 1, flipping a prediction)."""
    values = pd.Series(["2024-03-01", "March", "now", "today", "-1", "2020", "20240301", "1 March 2024"], name="t")
    assert date_parts(values)["t:year"].tolist()[:1] + date_parts(values)["t:year"].tolist()[-1:] == [2024, 2024]
    assert date_parts(values)["t:year"].iloc[1:7].isna().all()


def test_a_column_mixing_day_first_and_month_first_reports_the_ambiguous_dates():
    """13/02 forces day-first, 02/13 month-first: a column with both is still dates, 01/02/2020 in it is reported
    as ambiguous (not guessed), and a column that forces one order keeps it at predict, one row at a time."""
    rng = np.random.default_rng(0)
    days = [f"{d:02d}/{m:02d}/2020" if k % 2 else f"{m:02d}/{d:02d}/2020"
            for k, (d, m) in enumerate(zip(rng.integers(13, 29, 120), rng.integers(1, 13, 120)))]
    frame = pd.DataFrame({"when": days, "noise": rng.normal(size=120), "y": rng.integers(0, 2, 120)})
    assert {c.name: c.modality for c in detect_columns(frame, "y", Path("."))}["when"] == "datetime"
    predictor = Predictor(label="y", **{**OPTS, "max_epochs": 1}).fit(frame)
    report = predictor.prepare(frame.assign(when=["01/02/2020"] + days[1:]))[1].report["columns"]["when"]["masked"]
    assert report["rows"] == [0] and report["first"].startswith("ambiguous date '01/02/2020'")
    day_first = pd.DataFrame({"when": [f"{d:02d}/{m:02d}/2020" for d, m in zip(rng.integers(1, 29, 60),
                                                                               rng.integers(1, 13, 60))],
                              "y": rng.integers(0, 2, 60)}).assign(when=lambda f: ["25/12/2020"] + list(f["when"])[1:])
    model = Predictor(label="y", **{**OPTS, "max_epochs": 1}).fit(day_first)
    _, one = model.prepare(pd.DataFrame({"when": ["03/04/2020"]}))  # 3 April, as the training column reads
    tabular = model.pipeline_.processors["tabular"]
    assert tabular.date_orders_ == ["day"] and one.report["columns"] == {}
    month = tabular._numbers(pd.DataFrame({"when": ["03/04/2020"]}))["when:month"].iloc[0]
    assert month == 4
