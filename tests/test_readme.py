"""The README as a test: every bash and Python block runs verbatim, in the README's order, in one folder holding
cut-down files of the names it uses (``readme_folder.py``); each command must exit 0 with no traceback, and its
documented output must have its documented shape (files written, columns, headers). ``mmfuse serve`` is started in
the background and probed. Blocks marked ``<!-- illustrative: why -->`` are the only ones not run."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from markdown_runner import Command, Result, Runner, code_blocks, get_json, shell_commands
from readme_folder import readme_folder

README = Path(__file__).parents[1] / "README.md"


def _png(path: Path) -> None:
    assert path.read_bytes()[:4] == b"\x89PNG", f"{path} is not a PNG"


def check_fit(result: Result, folder: Path, words: list[str]) -> None:
    out = folder / words[words.index("--out") + 1]
    assert (out / "config.json").is_file() and (out / "manifest.json").is_file(), f"no model in {out}"
    assert f"saved model to {out.relative_to(folder)}" in result.stdout.replace(str(folder) + "/", "")
    if "--task" not in words:  # a labelled fit: the task says why, the validation table is the model's
        assert re.search(r"task: \w+, inferred from label '\w+' \(.+; --task sets another\)", result.stderr)
        assert "validation: the ensemble you get" in result.stdout or "validation: the network" in result.stdout
        assert re.search(r"column +modality +encoder +why", result.stderr)  # the column table has a header
        metrics = json.loads((out / "metrics.json").read_text())
        if metrics["restored_epoch"]:
            assert f"epoch {metrics['restored_epoch']} of {metrics['epochs']} kept" in result.stdout
            assert f"stopped by {metrics['stopped']}" in result.stdout
            _png(out / "learning_curves.png")


def check_evaluate(result: Result, folder: Path, words: list[str]) -> None:
    model = json.loads((folder / words[2] / "config.json").read_text())
    if model["task"]["name"] == "retrieval":
        assert "R@1" in result.stdout and "MRR" in result.stdout and "name -> image" in result.stdout
        if "--zero-shot" in words:
            assert "zero-shot classification of 'category'" in result.stdout
        return
    assert "accuracy" in result.stdout and "macro" in result.stdout
    if "--robustness" in words:
        assert "without" in result.stdout.lower() and "shapley" in result.stdout.lower()
    if "--importance" in words:
        assert "importance of each column" in result.stdout and "Shapley" in result.stdout
    for flag in ("--robustness-plot", "--importance-plot", "--confusion"):
        if flag in words:
            _png(folder / words[words.index(flag) + 1])


def check_predict(result: Result, folder: Path, words: list[str]) -> None:
    frame = pd.read_csv(folder / words[words.index("--out") + 1])
    model, table = words[words.index("predict") + 1:words.index("predict") + 3]
    rows = len(pd.read_csv(folder / table))
    assert len(frame) == rows and f"wrote {rows} predictions" in result.stdout
    assert list(frame.columns[:3]) == ["row", "inputs_used", "prediction"]
    trained_on, label = ("table.csv", "y") if "colour" in model else ("train.csv", "category")  # the plugin's model
    assert [c for c in frame.columns if c.startswith("proba_")] == [f"proba_{c}" for c in sorted(
        pd.read_csv(folder / trained_on)[label].unique())]
    if "--explain" in words:
        assert {"explains", "contribution_name", "contribution_image", "shapley_name"} <= set(frame.columns)


def check_leaderboard(result: Result, folder: Path, words: list[str]) -> None:
    assert "leaderboard" in result.stdout and "ngram_linear" in result.stdout and "weight" in result.stdout


def check_info(result: Result, folder: Path, words: list[str]) -> None:
    assert "inputs" in result.stdout and "fit in" in result.stdout
    if "colour" in words[-1]:
        assert "plugins: colour" in result.stdout and "colour_mlp" in result.stdout


def check_export(result: Result, folder: Path, words: list[str]) -> None:
    for split in ("train", "valid", "test"):
        path = folder / words[-1] / f"{split}.csv"
        assert re.search(rf"{split}: .*{split}\.csv \([\d,]+ rows; columns ", result.stdout) and path.is_file()


def check_sweep(result: Result, folder: Path, words: list[str]) -> None:
    names = ["image only", "name only", "fusion concat", "fusion late", "member ngram_linear", "portfolio"]
    for name in names:
        assert name in result.stdout, name
    assert "6 configurations x 1 seed," in result.stdout
    assert "seed 0;" in result.stdout and "±" not in result.stdout  # one seed: no spread to show
    out = folder / words[words.index("--out") + 1]
    assert "winner:" in result.stdout and (out / "best" / "model.safetensors").is_file()
    assert len(list((out / "runs").iterdir())) == len(names) and "eff. robustness" in result.stdout
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {r["name"] for r in runs} == set(names)
    assert set(next(r for r in runs if r["name"] == "image only")["curves"]) == {"image"}  # corrupted: its input


def check_index(result: Result, folder: Path, words: list[str]) -> None:
    meta = json.loads((folder / "index" / "index.json").read_text())
    assert meta["tower"] == "image" and len(meta["rows"]) == len(pd.read_csv(folder / "items.csv"))
    assert set(meta["extra"]) == {"name", "category"}  # the items' other columns, shown with each result


def check_search(result: Result, folder: Path, words: list[str]) -> None:
    found = [line for line in result.stdout.splitlines() if ".png" in line]
    assert len(found) == 5, result.stdout


CHECKS: dict[str, Callable[[Result, Path, list[str]], None]] = {
    "fit": check_fit, "evaluate": check_evaluate, "predict": check_predict, "leaderboard": check_leaderboard,
    "info": check_info, "export": check_export, "sweep": check_sweep, "index": check_index, "search": check_search}


def probe_server(folder: Path) -> Callable[[str], dict]:
    """What a served model or index must answer: its metadata, and a prediction or a search."""
    def probe(base: str) -> dict:
        meta = get_json(f"{base}/metadata")
        if meta.get("kind") == "index":
            found = get_json(f"{base}/search", {"text": "a red heart", "k": 3})
            assert len(found["results"]) == 3
            return {"metadata": meta, "search": found}
        image = base64.b64encode((folder / pd.read_csv(folder / "test.csv")["image"][0]).read_bytes()).decode()
        answer = get_json(f"{base}/predict", {"rows": [{"name": "red heart", "image": image}], "explain": True})
        row = answer["predictions"][0]
        assert row["prediction"] in meta["classes"] and "shapley" in row["contributions"]
        return {"metadata": meta, "predict": answer}
    return probe


def verb(words: list[str]) -> str:
    """The mmfuse command a shell line runs (``mmfuse --plugin x fit ...`` -> fit; ``datasets export`` -> export)."""
    if "mmfuse" not in words:
        return words[0]
    rest = words[words.index("mmfuse") + 1:]
    while rest and rest[0].startswith("--"):
        rest = rest[2:]
    return rest[1] if rest[0] == "datasets" else rest[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return readme_folder(tmp_path_factory.mktemp("readme"))


def test_every_block_of_the_readme_runs_as_written(folder):
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(folder),
           "MMFUSE_CACHE_DIR": str(folder / "cache"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    runner, ran = Runner(folder, env), []
    for block in code_blocks(README.read_text()):
        if block.use == "python":
            result = runner.python(block)
            assert result.returncode == 0 and "Traceback" not in result.stderr, \
                f"README line {block.line}: the Python block failed:\n{result.stderr[-3000:]}"
            ran.append(f"python@{block.line}")
        elif block.use.startswith("file:"):
            (folder / block.use[len("file:"):]).write_text(block.text)
        elif block.use == "shell":
            for command in shell_commands(block):
                words = shlex.split(command.text, comments=True)
                served = verb(words) == "serve"
                result = runner.shell(command, probe_server(folder) if served else None)
                where = f"README line {command.line}: `{command.text}`"
                assert result.returncode == 0, f"{where} exited {result.returncode}:\n{result.stderr[-3000:]}"
                assert "Traceback" not in result.stderr, f"{where} printed a traceback:\n{result.stderr[-3000:]}"
                if not served and verb(words) in CHECKS:
                    CHECKS[verb(words)](result, folder, words[words.index("mmfuse"):])
                ran.append(verb(words))
    assert {"fit", "evaluate", "predict", "serve", "index", "search", "sweep", "export"} <= set(ran)
    assert (folder / "my-model" / "config.json").is_file()  # the Python block saved its model


def test_the_runner_reads_blocks_and_commands():
    page = ("text\n\n```bash\nmmfuse fit a.csv \\\n  --out m/   # a comment\n# only a comment\n\nmmfuse info m/\n```\n"
            "<!-- illustrative: a placeholder -->\n```bash\ncurl <x>\n```\n<!-- file: p.py -->\n```python\nx = 1\n```\n"
            "```toml\n[a]\n```\n")
    blocks = code_blocks(page)
    assert [b.use for b in blocks] == ["shell", "illustrative", "file:p.py", "text"]
    assert shell_commands(blocks[0]) == [Command("mmfuse fit a.csv    --out m/   # a comment", 4),
                                         Command("mmfuse info m/", 8)]
    with pytest.raises(ValueError, match="line 1: a fenced block needs an info string"):
        code_blocks("```\nls\n```\n")
