"""The ``mmfuse`` command group: its options (``--plugin``), its commands, and the console-script entry that turns a
user error into one line. The commands live by what they work on (``train``, ``models``, ``search``, ``data``) and
import the library inside their body, so ``mmfuse --help`` starts without loading torch.

    mmfuse fit train.csv --label y --valid valid.csv --out model/
    mmfuse fit pairs.csv --task retrieval --query caption --target image --out model/
    mmfuse evaluate model/ test.csv [--json]
    mmfuse index model/ items.csv --out index/;  mmfuse search index/ "a red heart"
    mmfuse predict model/ new.csv --out preds.csv
    mmfuse info model/
    mmfuse serve model/ [--port 8000]            # REST API + web page
    mmfuse datasets export emoji DIR
    mmfuse demo
    mmfuse --plugin my_modality fit ...          # a plugin's modalities and encoders first
"""

from __future__ import annotations

import sys

import click

from ..errors import MMFuseError
from .console import setup_logging
from .data import datasets, demo
from .models import evaluate, export, info, leaderboard, predict, serve
from .search import index, search
from .train import fit, sweep


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="mmfuse")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Import a plugin module (its modalities, encoders, processors) before the command; repeatable. "
                   "Also imported: the modules in MMFUSE_PLUGINS (comma-separated) and the mmfuse.plugins entry "
                   "points of installed packages.")
def main(plugins: tuple[str, ...]) -> None:
    """mmfuse: train one fused model on a table of text, images, numbers and categories."""
    from ..plugins import load_plugins

    setup_logging()
    load_plugins(plugins)


for command in (fit, evaluate, predict, leaderboard, info, sweep, index, search, export, serve, datasets, demo):
    main.add_command(command)


def entry() -> None:
    """Console-script entry: user errors become one line on stderr and exit code 2."""
    try:
        main(standalone_mode=True)
    except MMFuseError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
