"""Saves that are really atomic: whatever signal arrives mid-save, the destination holds the old folder or the new
one, whole; what a killed save left beside it is recovered or removed by the next save there (never a live
process's); and two fits into one ``--out`` at once cannot both save."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import make_table
from corpus import cli

from mmfuse.estimators.runs import partial_folder
from mmfuse.io.locks import folder_lock
from mmfuse.io.staging import recover, staged_folder

STAGING = Path(__file__).parents[1] / "src" / "mmfuse" / "io" / "staging.py"

# a child that saves "new" over "old" and kills itself at one step of the save
CHILD = r"""
import importlib.util, os, shutil, signal, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("staging", sys.argv[1])
staging = importlib.util.module_from_spec(spec)
spec.loader.exec_module(staging)
final, step = Path(sys.argv[2]), sys.argv[3]
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if step == "between the two renames":  # where the exchange is not available
    staging.exchange = lambda a, b: False
    rename = Path.rename
    Path.rename = lambda self, target: (rename(self, target), die()) if "replaced" in str(target) else rename(self, target)
if step == "after the exchange":  # the old folder, now under the staging name, not yet removed
    rmtree, calls = shutil.rmtree, []
    staging.shutil.rmtree = lambda path, **k: die() if calls.append(path) or len(calls) == 2 else rmtree(path, **k)
with staging.staged_folder(final) as folder:
    (folder / "model.txt").write_text("new")
    if step == "while writing":
        die()
"""


@pytest.mark.parametrize("step", ["while writing", "between the two renames", "after the exchange"])
def test_a_save_killed_at_each_step_leaves_the_old_or_the_new_folder(tmp_path, step):
    final = tmp_path / "model"
    final.mkdir()
    (final / "model.txt").write_text("old")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(STAGING), str(final), step])
    assert child.wait() == -9
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    if step == "between the two renames":  # the one moment with no folder in place: the next save recovers it
        assert not final.exists() and hidden == [f".model.replaced-{child.pid}", f".model.writing-{child.pid}"]
        recover(final)
        assert (final / "model.txt").read_text() == "old"
    else:
        assert (final / "model.txt").read_text() == ("new" if step == "after the exchange" else "old")
        assert hidden == [f".model.writing-{child.pid}"]  # the dead save's staging folder, until the next save
    with staged_folder(final) as folder:
        (folder / "model.txt").write_text("newer")
    assert (final / "model.txt").read_text() == "newer"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # the dead process's leftovers removed


def test_a_live_processs_staging_folder_is_never_touched(tmp_path):
    live = tmp_path / f".model.writing-{os.getppid()}"
    live.mkdir()
    with staged_folder(tmp_path / "model") as folder:
        (folder / "model.txt").write_text("new")
    assert live.is_dir() and (tmp_path / "model" / "model.txt").read_text() == "new"


def test_a_second_fit_into_the_same_out_is_refused_while_the_first_runs(tmp_path):
    make_table(tmp_path, n=40, seed=0).to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "model"
    with folder_lock(partial_folder(out)) as mine:  # a fit into model/ is running
        assert mine
        second = cli("fit", tmp_path / "train.csv", "--label", "y", "--preset", "fast", "--max-epochs", "1",
                     "--out", out)
    assert second.code == 2 and "another mmfuse fit is writing to" in second.error_line and not out.exists()
    done = cli("fit", tmp_path / "train.csv", "--label", "y", "--preset", "fast", "--max-epochs", "1", "--out", out,
               "--ignore", "id")
    assert done.code == 0 and (out / "config.json").is_file() and not partial_folder(out).exists()


@contextmanager
def file_size_limit(size: int):
    """Every file this process writes stops at ``size`` bytes, as on a full disk (a write past it fails with EFBIG
    instead of raising SIGXFSZ); restored after the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_full_disk_while_saving_is_one_line_and_leaves_the_old_model(tmp_path):
    make_table(tmp_path, n=60, seed=0).to_csv(tmp_path / "train.csv", index=False)
    fit = ("fit", tmp_path / "train.csv", "--label", "y", "--preset", "fast", "--max-epochs", "1", "--quiet", "--out",
           tmp_path / "model")
    assert cli(*fit).code == 0
    before = {f.name: f.read_bytes() for f in (tmp_path / "model").iterdir()}
    with file_size_limit(20_000):
        full = cli(*fit, "--overwrite")
    assert full.code == 2 and full.err.count("\n") == 1, full.err
    assert full.error_line.startswith(f"error: could not save the model to {tmp_path / 'model'} (")
    assert "unchanged" in full.error_line
    assert {f.name: f.read_bytes() for f in (tmp_path / "model").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
