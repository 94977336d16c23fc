"""Per-epoch training checkpoints as safetensors + JSON (never a pickled ``.ckpt``), for ``fit --resume``.

    FOLDER/epoch-0003/tensors.safetensors   weights, best weights, optimizer moments, RNG states
    FOLDER/epoch-0003/state.json            epoch, history, scheduler / early-stopping / optimizer settings, the
                                            run's fingerprint and the tensors' SHA-256
    FOLDER/members/lightgbm/arrays.safetensors, state.json   a portfolio member finished before the network

Each epoch (and each member) is written to a staging folder and renamed into place, then older epochs are removed: a kill at any
moment leaves the last complete epoch readable.
"""

from __future__ import annotations

import json
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..errors import DataError
from .bounded_json import MODEL_BYTES, read_file
from .hashing import sha256_file
from .staging import staged_folder

TENSORS, STATE, MEMBERS, ARRAYS = "tensors.safetensors", "state.json", "members", "arrays.safetensors"
# what mmfuse writes in a checkpoint folder: epochs, the members' folder, and their staging folders (``staged_folder``)
OWN_ENTRY = re.compile(rf"(epoch-\d+|{MEMBERS})|\.(epoch-\d+|{MEMBERS})\.(writing|replaced)-\d+")


@contextmanager
def writing_state(folder: Path) -> Iterator[None]:
    """A run's state that cannot be written (a full disk, a quota) is one ``DataError``; the last complete state
    stays."""
    try:
        yield
    except (OSError, SafetensorError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise DataError(f"could not save the run's state in {folder} ({reason}): free some space and continue "
                        "with --resume (the last complete state is kept)") from None


def save_checkpoint(folder: str | Path, epoch: int, tensors: dict[str, Tensor], state: dict[str, Any]) -> Path:
    """Write epoch ``epoch``'s checkpoint under ``folder`` and drop the older ones; returns its path."""
    root = Path(folder)
    final = root / f"epoch-{epoch:04d}"
    with writing_state(root), staged_folder(final) as staging:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(staging / TENSORS))
        state = {**state, "epoch": epoch, "tensors_sha256": sha256_file(staging / TENSORS)}
        (staging / STATE).write_text(json.dumps(state))
    for older in root.glob("epoch-*"):
        if older != final:
            shutil.rmtree(older, ignore_errors=True)
    return final


def load_checkpoint(folder: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
    """The latest complete checkpoint under ``folder`` as (tensors, state), or None when there is none."""
    root = Path(folder)
    for path in sorted(root.glob("epoch-*"), reverse=True) if root.is_dir() else []:
        try:
            state = read_file(path / STATE, MODEL_BYTES)
            if sha256_file(path / TENSORS) != state.get("tensors_sha256"):
                continue
            return load_file(str(path / TENSORS)), state
        except (OSError, ValueError, SafetensorError):
            continue
    return None


def saved_epoch(folder: str | Path) -> int | None:
    """The epoch of the latest checkpoint under ``folder`` (by its name; not verified), or None when there is none."""
    root = Path(folder)
    names = sorted(p.name for p in root.glob("epoch-*")) if root.is_dir() else []
    return int(names[-1][len("epoch-"):]) if names and names[-1][len("epoch-"):].isdigit() else None


def save_member(folder: str | Path, name: str, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
    """Write a finished portfolio member (its arrays and JSON state) under ``folder``, whole or not at all."""
    with writing_state(Path(folder)), staged_folder(Path(folder) / MEMBERS / name) as staging:
        save_arrays({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(staging / ARRAYS))
        (staging / STATE).write_text(json.dumps({**state, "arrays_sha256": sha256_file(staging / ARRAYS)}))


def load_member(folder: str | Path, name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """A member saved under ``folder`` as (arrays, state), or None when there is none or it does not verify."""
    path = Path(folder) / MEMBERS / name
    try:
        state = read_file(path / STATE, MODEL_BYTES)
        if sha256_file(path / ARRAYS) != state.get("arrays_sha256"):
            return None
        return load_arrays(str(path / ARRAYS)), state
    except (OSError, ValueError, SafetensorError):
        return None


def saved_members(folder: str | Path) -> list[str]:
    """The names of the members saved under ``folder`` (not verified)."""
    root = Path(folder) / MEMBERS
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def foreign_entries(folder: str | Path) -> list[str]:
    """The names in ``folder`` that mmfuse does not write there, sorted (none when it is not a folder)."""
    root = Path(folder)
    return sorted(p.name for p in root.iterdir() if not OWN_ENTRY.fullmatch(p.name)) if root.is_dir() else []


def remove_checkpoints(folder: str | Path) -> None:
    """Remove what mmfuse wrote in ``folder``, then the folder if that left it empty; anything else stays."""
    root = Path(folder)
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if not OWN_ENTRY.fullmatch(entry.name):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if not any(root.iterdir()):
        root.rmdir()


def check_fingerprint(state: dict[str, Any], fingerprint: dict[str, str], folder: str | Path) -> None:
    """Refuse to resume a checkpoint written by a run on other data or settings, naming what changed
    (``fingerprint``: part name -> hash)."""
    saved = state.get("fingerprint")
    if saved == fingerprint:
        return
    changed = [n for n in fingerprint if saved.get(n) != fingerprint[n]] if isinstance(saved, dict) else []
    what = f"{', '.join(changed)} changed since" if changed else "it was written by a fit on other data or settings than"
    raise DataError(f"cannot resume from {folder}: {what} the interrupted fit (fit without --resume, or with the "
                    "same table and options)")
