"""A ``.npy`` file's header, checked before any array is allocated: what it holds, and whether the file can hold it.

    shape, fortran, dtype = npy_header(f, size)   # f: a binary file at its start; ValueError saying what is wrong

Refused: an ``.npz`` archive, an empty file, a header numpy cannot parse (any error of its parser: text, a damaged
header), Python objects (never unpickled), values that are not numbers, a claim above ``max_bytes`` (default
``MAX_NPY_BYTES``) or above what the file holds.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

MAX_NPY_BYTES = 2**31  # what an .npy header may claim (2 GiB)


def npy_header(f: BinaryIO, size: int, max_bytes: int = MAX_NPY_BYTES) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) of the .npy file ``f`` of ``size`` bytes, left at the start of its data."""
    if f.read(2) == b"PK":
        raise ValueError("an .npz archive, not a .npy array")
    f.seek(0)
    try:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(f, max_header_size=10_000)
    except Exception as err:  # noqa: BLE001  numpy's header parser raises EOFError, ValueError, SyntaxError,
        # tokenize.TokenError...: each means text or a damaged header, never an error of ours
        raise ValueError("the file is empty" if size == 0 else f"not a .npy array ({err})") from None
    if dtype.hasobject:
        raise ValueError("not a .npy array (it holds Python objects, which are never unpickled)")
    if dtype.kind not in "biuf":
        raise ValueError(f"holds {dtype} values, not numbers")
    claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if claimed > max_bytes:
        raise ValueError(f"its header claims shape {shape} ({claimed / 2**30:.1f} GiB), above the "
                         f"{max_bytes / 2**30:g} GiB limit")
    if claimed > size - f.tell():
        raise ValueError(f"truncated: its header claims shape {shape} ({claimed:,} bytes), the file holds fewer")
    return shape, fortran, dtype
