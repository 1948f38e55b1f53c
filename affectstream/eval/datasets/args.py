"""The command-line flags that say how ``--dataset`` is read, shared by ``eval dfer`` and
``finetune`` so that both spell and explain them the same way. Imported while the parser is
built (on every CLI start), so it needs nothing beyond argparse and the format names."""

from __future__ import annotations

import argparse

from affectstream.eval.datasets import FORMATS

SPLIT_HELP = ("dfew/mafw: test-K, train-K, all-K (default test-1); ferv39k: test or train "
              "(default test); folder: a subfolder; manifest: the split column")


def dataset_args(p: argparse.ArgumentParser, *, format_default: str | None,
                 split_help: str = SPLIT_HELP) -> None:
    """``--format``, ``--split`` and ``--skip-bad``. ``format_default`` None: the command picks
    the layout from ``--dataset`` (:func:`affectstream.eval.datasets.default_format`)."""
    layout = (f"dataset layout (default: {format_default})" if format_default else
              "dataset layout (default: manifest for a .jsonl or .csv file, else folder)")
    p.add_argument("--format", default=format_default, choices=FORMATS, help=layout)
    p.add_argument("--split", help=split_help)
    p.add_argument("--skip-bad", action="store_true",
                   help="skip (and count) missing or unreadable clips and unknown labels")
