"""Write a benchmark's results into its marked section of BENCHMARKS.md (or README.md)."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_section(name: str, markdown: str, path: Path | None = None) -> None:
    """Replace the text between `<!-- section:NAME -->` and `<!-- /section:NAME -->`."""
    path = path or ROOT / "BENCHMARKS.md"
    text = path.read_text()
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def load_average() -> float:
    """The machine's 1-minute load average (NaN where the OS does not report one), for the
    Machine lines of the benchmark reports."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def add_replay_options(parser: argparse.ArgumentParser) -> None:
    """--from-json (report a finished run's JSON instead of running) and --no-write."""
    parser.add_argument("--from-json", type=Path, default=None, help="report a finished run's JSON instead of running")
    parser.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")


def run_or_replay(args: argparse.Namespace, section: str, check: Callable[[], str | None],
                  run: Callable[[argparse.Namespace], dict], report: Callable[[dict], str]) -> int:
    """Run a benchmark (or read the finished run that --from-json names), print its report and
    write it into `section` of BENCHMARKS.md unless --no-write. `check()` returns a one-line
    error about the inputs, or None; an error or a missing --from-json file exits with 2."""
    if args.from_json is not None:
        if not args.from_json.is_file():
            print(f"--from-json: {args.from_json} does not exist")
            return 2
        summary = json.loads(args.from_json.read_text())
    else:
        error = check()
        if error:
            print(error)
            return 2
        summary = run(args)
    text = report(summary)
    print(text)
    if not args.no_write:
        write_section(section, text)
    return 0
