"""A search index: a collection's embeddings from one tower of a retrieval model, searched by cosine similarity.

    mmfuse index model/ items.csv --column image --out index/
    mmfuse search index/ "a red heart"          # or --image query.png

The folder holds ``embeddings.safetensors`` ((N, D) unit vectors) and ``index.json`` (the model's path, the column
and tower, each item's row id and value, the item's other columns, which ``search`` shows beside it, and the items
table's folder, against which file values are resolved).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..data.table import read_table
from ..errors import BundleError
from ..io.bounded_json import CONFIG_BYTES, read_file

INDEX_FORMAT = "mmfuse-index"


@dataclass
class SearchIndex:
    model: str               # the retrieval model folder (absolute path)
    column: str              # the items' column
    tower: str               # the model tower that embedded them
    rows: list[int]          # (N,) row ids in the items table
    values: list[str]        # (N,) the items (texts or file paths as written in the table)
    embeddings: np.ndarray   # (N, D) unit vectors
    extra: dict[str, list[str]] = field(default_factory=dict)  # other column -> (N,) values, shown with results
    root: str = ""           # the items table's folder (absolute), where file values are found ("" for a DataFrame)

    def save(self, folder: str | Path) -> Path:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        save_file({"embeddings": torch.from_numpy(np.ascontiguousarray(self.embeddings))}, str(out / "embeddings.safetensors"))
        (out / "index.json").write_text(json.dumps({"format": INDEX_FORMAT, "model": self.model, "column": self.column,
                                                    "tower": self.tower, "rows": self.rows, "values": self.values,
                                                    "extra": self.extra, "root": self.root}))
        return out

    @classmethod
    def load(cls, folder: str | Path) -> "SearchIndex":
        folder = Path(folder)
        meta_path, vectors_path = folder / "index.json", folder / "embeddings.safetensors"
        if not meta_path.is_file() or not vectors_path.is_file():
            raise BundleError(f"{folder} is not an mmfuse index (index.json and embeddings.safetensors expected)")
        try:
            meta = read_file(meta_path, CONFIG_BYTES)
        except (OSError, ValueError) as err:
            raise BundleError(f"{meta_path} is not readable JSON ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            raise BundleError(f"{meta_path} is not an mmfuse index file")
        embeddings = load_file(str(vectors_path))["embeddings"].numpy()
        if len(embeddings) != len(meta["rows"]):
            raise BundleError(f"{folder}: {len(embeddings)} embeddings for {len(meta['rows'])} items (corrupt index)")
        return cls(meta["model"], meta["column"], meta["tower"], meta["rows"], meta["values"], embeddings,
                   meta.get("extra", {}), meta.get("root", ""))

    def search(self, query: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
        """query (D,) unit vector -> the k best (position, cosine similarity), best first."""
        scores = self.embeddings @ query
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in top]


def build_index(retriever, data, column: str, tower: str | None = None) -> SearchIndex:
    """Embed ``column`` of a table with a fitted ``Retriever`` (through ``tower``, default the column's own)."""
    table = read_table(data, "items")
    rows, embeddings = retriever.embed(table, column, tower)
    items = table.frame.loc[rows]
    extra = {str(c): items[c].astype(str).tolist() for c in items.columns if c != column}
    return SearchIndex(str(Path(retriever.path_).resolve()) if hasattr(retriever, "path_") else "",
                       column, tower or column, [int(r) for r in rows], items[column].astype(str).tolist(),
                       embeddings, extra, str(table.root.resolve()) if not isinstance(data, pd.DataFrame) else "")
