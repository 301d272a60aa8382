"""Pieces the project's command lines share: the `--no-progress` flag, the `--shard i/n` option
type and the `main` wrapper that turns bad input into one `error: ...` line and exit status 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """The one progress convention of every command: progress bars are on by default and
    `--no-progress` turns them off. The parsed value is `args.progress` (True or False)."""
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bars or progress lines")


def parse_shard(text: str) -> tuple[int, int]:
    """argparse type for `--shard i/n`: (i, n) with n >= 1 and 0 <= i < n."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected i/n (e.g. 0/4), got {text!r}") from exc
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"need 0 <= i < n, got {text!r}")
    return i, n


def run_json_command(work: Callable[[], Any]) -> int:
    """Run `work()` and print its result as JSON (status 0). A missing key, a ValueError (CliError,
    CheckpointError, ...) or an OSError (unreadable file) prints `error: ...` naming the field or
    file to stderr and returns status 2 instead of a traceback."""
    try:
        result = work()
    except KeyError as exc:
        print(f"error: {exc.args[0]}: missing from the input", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # CliError, CheckpointError, unreadable files
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0
