"""Command line: `python -m analysis report --export DIR --out DIR [options]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis.load import AnalysisInputError, load_database, load_export
from analysis.qc import QCRules
from analysis.report import ExtraInputs, ReportOptions, build_report, remove_outputs
from analysis.staircase import StaircaseRule


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis",
                                 description="Analyse a diffusion-psychophysics export.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="write OUT/report.html and OUT/tables/*.csv")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--export", type=Path, help="export folder (trials/clicks/events .csv or .parquet)")
    src.add_argument("--database", help="SQLAlchemy URL of relations export_trials/clicks/events")
    r.add_argument("--study", help="with --database: the study slug to read")
    r.add_argument("--maps", type=Path, help="model maps folder: METHOD/index.json + STIMULUS_ID.npy")
    r.add_argument("--features", type=Path,
                   help="encoder features: .npz (stimulus_id, features) or CSV/Parquet")
    r.add_argument("--critic", type=Path,
                   help="one-shot critic answers: CSV/Parquet with stimulus_id and correct (0/1) "
                        "or predicted_label")
    r.add_argument("--classifier", type=Path,
                   help="classifier decisions: CSV/Parquet with classifier, stimulus_id, answer")
    r.add_argument("--manifest", type=Path, help="stimulus manifest.csv for extra metadata")
    r.add_argument("--out", type=Path, required=True, help="output folder")
    r.add_argument("--grid", type=int, help="human map grid in px (default: the model maps' size, else 32)")
    r.add_argument("--min-clicks", type=int, default=1)
    r.add_argument("--min-subjects", type=int, default=2)
    r.add_argument("--blur", choices=["disc", "gaussian", "none"], default="disc")
    r.add_argument("--n-boot", type=int, default=1000)
    r.add_argument("--ceiling-repeats", type=int, default=50)
    r.add_argument("--mixed-max-trials", type=int, default=10000,
                   help="fit the mixed model on whole participants up to this many trials")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--no-exclude", action="store_true", help="keep participants that fail QC")
    r.add_argument("--min-catch-accuracy", type=float, default=QCRules.min_catch_accuracy)
    r.add_argument("--fast-rt-ms", type=float, default=QCRules.fast_rt_ms)
    r.add_argument("--max-fast-fraction", type=float, default=QCRules.max_fast_fraction)
    r.add_argument("--max-focus-losses", type=int, default=QCRules.max_focus_losses)
    r.add_argument("--staircase",
                   help="the study's staircase settings as JSON, e.g. '{\"down\": 2}', used "
                        "for every participant instead of the settings the export records "
                        "(unset keys: the study app's defaults)")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    remove_outputs(args.out)  # a run that stops on an error leaves no earlier report behind
    for name in ("n_boot", "ceiling_repeats", "min_subjects", "mixed_max_trials"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    if args.grid is not None and args.grid < 2:
        print("error: --grid must be at least 2", file=sys.stderr)
        return 2
    try:
        staircase = (None if args.staircase is None
                     else StaircaseRule.from_dict(json.loads(args.staircase)))
    except ValueError as exc:  # JSONDecodeError is one
        print(f"error: --staircase: {exc}", file=sys.stderr)
        return 2
    try:
        export = (load_export(args.export) if args.export is not None
                  else load_database(args.database, args.study))
        for repair in export.repairs:
            print(f"repaired: {repair}", file=sys.stderr)
        opt = ReportOptions(
            grid=args.grid, min_clicks=args.min_clicks, min_subjects=args.min_subjects,
            blur=args.blur, n_boot=args.n_boot, ceiling_repeats=args.ceiling_repeats,
            mixed_max_trials=args.mixed_max_trials, seed=args.seed, exclude=not args.no_exclude,
            qc_rules=QCRules(args.min_catch_accuracy, args.fast_rt_ms, args.max_fast_fraction,
                             args.max_focus_losses), staircase=staircase)
        extra = ExtraInputs(args.maps, args.features, args.critic, args.classifier,
                            args.manifest)
        path = build_report(export, args.out, extra, opt, argv)
    except AnalysisInputError as exc:
        print(f"error: {exc} (no report written)", file=sys.stderr)
        return 2
    print(f"wrote {path} and {args.out / 'tables'}/*.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
