"""The demo's report and its error when data packages are missing (the full demo runs in `make demo`)."""

import subprocess
import sys
from pathlib import Path

from mmfuse import Predictor
from mmfuse.demo import write_report
from mmfuse.plots import plot_robustness
from mmfuse.analysis.robustness import LEVELS, robustness


def test_report_links_existing_plots(table_dir, tmp_path):
    results = {}
    for name, ignore in (("image only", ["text", "x", "colour"]), ("fused", [])):
        folder = tmp_path / name.replace(" ", "_")
        predictor = Predictor(label="y", preset="fast", max_epochs=2, threads=2, progress=False, verbose=False,
                              ignore=["id", *ignore]).fit(table_dir / "train.csv")
        test = predictor.evaluate(table_dir / "test.csv", confusion_plot=tmp_path / f"{folder.name}_confusion_test.png")
        predictor.save(folder)
        results[name] = {**test, "epochs": 2, "fit_seconds": 1.0, "parameters": 10, "path": folder}
    contributions = robustness(predictor, table_dir / "test.csv")
    plot_robustness(contributions.curves, LEVELS, contributions.metric, tmp_path / "robustness.png")
    report = write_report(tmp_path, "title", results, contributions)
    text = report.read_text()
    assert "What each input contributes" in text and "| image |" in text
    assert "| fused |" in text and "| image only |" in text
    for link in [line.split("(")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]:
        assert (tmp_path / link).read_bytes()[:4] == b"\x89PNG", link


def test_emoji_demo_without_data_says_how_to_get_it(tmp_path):
    mmfuse = str(Path(sys.executable).with_name("mmfuse"))
    result = subprocess.run([mmfuse, "demo", "--dataset", "emoji", "--data", str(tmp_path / "none"),
                             "--out", str(tmp_path / "runs")], capture_output=True, text=True,
                            env={"MMFUSE_EMOJI_SOURCE": str(tmp_path / "nowhere"), "PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 2
    assert "npm pack emoji-datasource-google@16.0.0" in result.stderr and "Traceback" not in result.stderr
