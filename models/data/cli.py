"""`python -m models data fetch omniglot|quickdraw ...`: download a public data set into the cache.

  python -m models data fetch omniglot [--minimal]
  python -m models data fetch quickdraw cat "The Eiffel Tower" [--format numpy_bitmap|simplified]

Options: `--cache DIR` (default $DP_DATA_CACHE, else $XDG_CACHE_HOME/diffusion-psychophysics, else
~/.cache/diffusion-psychophysics), `--base-url URL` (a mirror; default $DP_OMNIGLOT_URL /
$DP_QUICKDRAW_URL, else the public host), `--no-progress`. Prints the data folder and the `--data`
option to pass to the pipelines on stdout. A failed download prints one line `error: ...` naming
the URL and exits with status 1 (run again to resume); bad options exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from models.cliutil import add_progress_flag
from models.data import sources
from models.data.fetch import FetchError, cache_root, fetch_all


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download Omniglot or QuickDraw categories into the data cache")
    sets = f.add_subparsers(dest="dataset", required=True)
    o = sets.add_parser("omniglot", help="the Omniglot zips (background, evaluation, minimal splits, one-shot runs)")
    o.add_argument("--minimal", action="store_true",
                   help="only the minimal background splits and the one-shot runs (3.3 MB)")
    q = sets.add_parser("quickdraw", help="QuickDraw categories, one file each")
    q.add_argument("categories", nargs="+", metavar="CATEGORY",
                   help="category names as QuickDraw spells them, e.g. cat 'The Eiffel Tower'")
    q.add_argument("--format", choices=tuple(sources.QUICKDRAW_FORMATS), default="numpy_bitmap",
                   help="numpy_bitmap: 28x28 bitmaps (.npy, default); simplified: strokes (.ndjson)")
    for s in (o, q):
        s.add_argument("--cache", type=Path, help="data cache folder (default: $DP_DATA_CACHE or the XDG cache)")
        s.add_argument("--base-url", help="fetch from this mirror instead of the public host")
        add_progress_flag(s)
    return p


def _fetch(args: argparse.Namespace) -> Path:
    cache = args.cache.expanduser() if args.cache else cache_root()
    if cache.exists() and not cache.is_dir():
        raise ValueError(f"--cache: {cache} is a file, not a folder")
    if args.dataset == "omniglot":
        base = args.base_url or os.environ.get(sources.OMNIGLOT_URL_ENV) or sources.OMNIGLOT_URL
        folder = sources.omniglot_folder(cache)
        fetch_all(sources.omniglot_files(base, args.minimal), folder, quiet=not args.progress)
        return folder
    base = args.base_url or os.environ.get(sources.QUICKDRAW_URL_ENV) or sources.QUICKDRAW_URL
    folder = sources.quickdraw_folder(cache, args.format)
    for item in sources.quickdraw_files(args.categories, args.format, base):
        try:
            fetch_all([item], folder, quiet=not args.progress)
        except FetchError as exc:
            if exc.status == 404:
                raise FetchError(f"no QuickDraw category {item.name.rsplit('.', 1)[0]!r} at {item.url} "
                                 "(HTTP 404; names are case-sensitive, e.g. cat, 'The Eiffel Tower')") from None
            raise
    return folder


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        folder = _fetch(args)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the cache folder cannot be created or written
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: --cache: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    data = shlex.quote(str(folder.resolve()))
    print(f"data: {folder.resolve()}")
    if args.dataset == "omniglot":
        print(f"pipelines: --data {data}  (e.g. python -m experiments run artist --profile full --data {data})")
        print("make demo trains on it when it is in the default cache (or named by DP_OMNIGLOT_DIR)")
    else:
        print(f"pipelines: --data {data} --set data.dataset=quickdraw  (the full profile holds out "
              "data.heldout_classes = 50 categories: fetch more, or lower it with --set)")
    return 0
