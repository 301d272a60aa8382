"""Command line:

  python -m experiments run artist|facade|study [--profile tiny|cpu|full|FILE.toml] [--data PATH]
                            [--out DIR] [--seed N] [--device auto|cpu|cuda] [--cache DIR]
                            [--set SECTION.FIELD=VALUE ...] [--no-progress]
  python -m experiments demo [--no-serve] [--port N] [--root DIR] [--cache DIR] [--device ...]
                             [--workers N] [--dataset auto|digits|omniglot] [--no-progress]

Bad input ends with a message naming the option or field and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.cliutil import add_progress_flag

PIPELINES = ("artist", "facade", "study")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m experiments",
                                 description="Run the diffusion-psychophysics pipelines end to end.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one pipeline into one output folder")
    r.add_argument("name", choices=PIPELINES)
    r.add_argument("--profile", default="tiny", help="tiny, cpu, full or a profile TOML file (default tiny)")
    r.add_argument("--data", help="data folder for the profile's data set (Omniglot, QuickDraw, folder)")
    r.add_argument("--out", type=Path, help="output folder (default data/runs/NAME-PROFILE-sSEED-TIME)")
    r.add_argument("--seed", type=int, default=0, help="one seed for every stage (default 0)")
    r.add_argument("--device", default=None, help="auto (cuda when present), cpu, cuda, cuda:N")
    r.add_argument("--cache", type=Path, help="cache of trained models and stimuli (default data/runs/cache)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a profile field, e.g. --set models.set.training.steps=2000 or "
                        "--set sampling.n_per_class=10 (repeatable)")
    add_progress_flag(r)
    d = sub.add_parser("demo", help="build the demo (models, stimuli, two live studies) and serve it")
    d.add_argument("--no-serve", action="store_true", help="build everything, print the links, do not serve")
    d.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (a free one when taken)")
    d.add_argument("--root", type=Path, help="demo folder (default data/demo)")
    d.add_argument("--cache", type=Path, help="cache of trained models and stimuli (default ROOT/cache)")
    d.add_argument("--device", default=None)
    d.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    d.add_argument("--dataset", choices=("auto", "digits", "omniglot"), default="auto",
                   help="auto (default): Omniglot when $DP_OMNIGLOT_DIR names it or `python -m models data "
                        "fetch omniglot` put it in the data cache, else the embedded digits")
    add_progress_flag(d)
    return ap


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _os_message(exc: OSError) -> str:
    """One line for an OSError: its reason and the file it concerns."""
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _folder_problem(option: str, folder: Path | None) -> str | None:
    """Why `folder` (an output folder option) cannot be used, or None when it can be created."""
    if folder is None:
        return None
    if folder.exists() and not folder.is_dir():
        return f"{option}: {folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{option}: cannot create {folder}: {_os_message(exc)}"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    from experiments.profiles import ProfileError
    from models.device import pick_device

    try:
        device = pick_device(args.device)
    except ValueError as exc:
        return _fail(f"--{exc}")
    if args.command == "demo":
        from experiments.demo import DemoError, run_demo
        from experiments.demo_data import DemoDataError

        if not 1 <= args.port <= 65535:
            return _fail("--port: must be in 1..65535")
        if args.workers < 1:
            return _fail("--workers: must be at least 1")
        for option, folder in (("--root", args.root), ("--cache", args.cache)):
            if (problem := _folder_problem(option, folder)) is not None:
                return _fail(problem)
        try:
            return run_demo(root=args.root, cache=args.cache, device=device, serve=not args.no_serve, port=args.port,
                            workers=args.workers, progress=args.progress, dataset=args.dataset)
        except (ProfileError, DemoError, DemoDataError) as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(f"--root/--cache: {_os_message(exc)}")
    from experiments.profiles import load_profile
    from experiments.rundir import RunDir

    if args.data is not None and not Path(args.data).expanduser().exists():
        return _fail(f"--data: {args.data} does not exist")
    try:
        profile = load_profile(args.profile, args.data, args.overrides, seed=args.seed)
    except ProfileError as exc:
        return _fail(str(exc))
    for option, folder in (("--out", args.out), ("--cache", args.cache)):
        if (problem := _folder_problem(option, folder)) is not None:
            return _fail(problem)
    try:
        run = RunDir(args.name, profile, args.seed, args.out, argv, args.cache)
    except OSError as exc:
        return _fail(f"--out: cannot write the run folder: {_os_message(exc)}")
    if args.name == "artist":
        from experiments.artist import run_artist as pipeline
    elif args.name == "facade":
        from experiments.facade import run_facade as pipeline
    else:
        from experiments.study_pipeline import run_study as pipeline
    try:
        path = pipeline(run, device, progress=args.progress)
    except ValueError as exc:  # data/config problems found late name their field
        run.log.error("failed: %s", exc)
        return _fail(str(exc))
    except KeyError as exc:  # a field missing from a file the pipeline reads
        run.log.error("failed: missing field %s", exc)
        return _fail(f"missing field {exc} in the pipeline's input (--data, --cache or --profile)")
    except OSError as exc:  # unreadable or unwritable files under the cache or the data
        run.log.error("failed: %s", exc)
        return _fail(f"--cache/--data: {_os_message(exc)}")
    print(f"{args.name}: wrote {path}")
    return 0
