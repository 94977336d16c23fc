"""Reading tables in every supported format, relative paths, and the stratified split."""

import numpy as np
import pytest

from conftest import make_table
from mmfuse import Predictor
from mmfuse.data.table import read_table, split_rows
from mmfuse.errors import DataError


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_formats_resolve_paths_against_the_tables_folder(tmp_path, suffix, monkeypatch):
    frame = make_table(tmp_path / "data", n=80, seed=3)
    path = tmp_path / "data" / f"train{suffix}"
    {".csv": lambda: frame.to_csv(path, index=False), ".parquet": lambda: frame.to_parquet(path),
     ".jsonl": lambda: frame.to_json(path, orient="records", lines=True)}[suffix]()
    table = read_table(path)
    assert len(table) == 80 and table.root == path.parent.resolve()
    monkeypatch.chdir(tmp_path)  # image paths are relative to the table, not the working directory
    predictor = Predictor(label="y", preset="fast", max_epochs=1, threads=2, progress=False, verbose=False).fit(path)
    assert predictor.data_report_["train"]["columns"].get("image") is None, "every image was read"


def test_unreadable_tables(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "none.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match="use .csv, .tsv, .parquet or .jsonl"):
        read_table(tmp_path / "t.xlsx")
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="no rows"):
        read_table(tmp_path / "empty.csv")


def test_stratified_split_is_seeded_and_keeps_singletons_in_train():
    strata = np.array(["a"] * 50 + ["b"] * 10 + ["c"])
    train, valid = split_rows(strata, len(strata), 0.2, seed=1)
    assert sorted(np.concatenate([train, valid])) == list(range(61))
    assert (strata[valid] == "a").sum() == 10 and (strata[valid] == "b").sum() == 2
    assert 60 in train
    again = split_rows(strata, len(strata), 0.2, seed=1)
    assert np.array_equal(valid, again[1])


def test_time_limit_stops_training(table_dir):
    predictor = Predictor(label="y", preset="fast", max_epochs=500, time_limit=2, threads=2, progress=False, verbose=False)
    predictor.fit(table_dir / "train.csv")
    assert 1 <= predictor.metrics_["epochs"] < 500 and predictor.fit_time_ < 30
