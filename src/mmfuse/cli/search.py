"""``mmfuse index`` and ``mmfuse search``: embed a collection with a retrieval model and query it."""

from __future__ import annotations

from typing import Any

import click

from ..errors import DataError
from . import render
from .console import console, setup_logging
from .options import cache_option, encoding_option, load_model, source, threads_option


@click.command()
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("items", type=click.Path(dir_okay=False))
@click.option("--column", help="The items' column [default: the model's target column, else its query column].")
@click.option("--tower", help="Model tower to embed them with [default: the tower of the same name].")
@click.option("--out", default="index", show_default=True, type=click.Path(file_okay=False), help="Index folder.")
@cache_option
@threads_option
@encoding_option
def index(model: str, items: str, column: str | None, tower: str | None, out: str, cache_dir: str | None,
          threads: int | None, encoding: str | None) -> None:
    """Embed the collection ITEMS with retrieval MODEL into a search index."""
    from ..data.table import read_table
    from ..estimators.index import build_index

    setup_logging()
    retriever = load_retriever(model, threads, cache_dir)
    table = read_table(source(items, encoding), "items")
    column = column or next((c for c in (retriever.target, retriever.query) if c in table.frame.columns), None)
    if column is None:
        raise DataError(f"items: neither {retriever.target!r} nor {retriever.query!r} is a column; name one with --column")
    built = build_index(retriever, table, column, tower)
    built.save(out)
    console.print(f"indexed {len(built.rows)} items of {column!r} into {out}/")


@click.command()
@click.argument("index_dir", metavar="INDEX", type=click.Path(file_okay=False))
@click.argument("query", required=False)
@click.option("--image", type=click.Path(dir_okay=False), help="Search with an image file instead of text.")
@click.option("--audio", type=click.Path(dir_okay=False), help="Search with an audio file instead of text.")
@click.option("-k", "--top", default=5, show_default=True, type=click.IntRange(min=1), help="How many results.")
@click.option("--model", type=click.Path(file_okay=False), help="Retrieval model [default: the one that built INDEX].")
@cache_option
def search(index_dir: str, query: str | None, image: str | None, audio: str | None, top: int, model: str | None,
           cache_dir: str | None) -> None:
    """Print the items of INDEX closest to QUERY (text), or to --image / --audio."""
    from ..estimators.index import SearchIndex

    given = [(m, v) for m, v in (("text", query), ("image", image), ("audio", audio)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one query: a text argument, --image FILE or --audio FILE")
    setup_logging()
    modality, value = given[0]
    built = SearchIndex.load(index_dir)
    retriever = load_retriever(model or built.model, None, cache_dir, verbose=False)
    vector = retriever.embed_values(retriever.tower_of_modality(modality), [value])[0]
    rows = [[str(rank), f"{score:.3f}", str(built.rows[i]), built.values[i], *[v[i] for v in built.extra.values()]]
            for rank, (i, score) in enumerate(built.search(vector, top), start=1)]
    console.print(render.search_table(f"top {top} of {len(built.rows)} {built.column!r} items for {value!r}",
                                      built.column, list(built.extra), rows))


def load_retriever(model: str, threads: int | None, cache_dir: str | None, verbose: bool = True) -> Any:
    retriever = load_model(model, threads=threads, verbose=verbose, cache_dir=cache_dir)
    if not retriever.is_retrieval:
        raise DataError(f"{model} is not a retrieval model (train one with mmfuse fit --task retrieval)")
    return retriever
