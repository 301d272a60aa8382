"""`python -m models classifier KIND ...`: train one classifier and save its checkpoint.

KIND: realfake | nway | protonet | simclr | feedback. Options come from flags or from a TOML
file (`--config FILE`, keys = the long flag names with underscores); flags given on the command
line win. Prints a JSON summary (checkpoint path and measured figures) on stdout.

  python -m models classifier protonet --data omniglot --data-root ../shared/data/omniglot \
      --size 28 --episodes 2000 --eval-runs ../shared/data/omniglot/all_runs.zip --out critic.pt
  python -m models classifier realfake --fake-manifest stimuli/manifest.json --arch resnet18 \
      --sweep 0.1,0.25,0.5,1 --out realfake.pt
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

import torch

from models.classifiers.feedback import DEFAULT_FILL
from models.classifiers.protonet import MAX_TEST_SHIFT
from models.cliutil import add_progress_flag, run_json_command

KINDS = ("realfake", "nway", "protonet", "simclr", "feedback")


class CliError(ValueError):
    """A bad option; the message names it."""


def _fractions(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"fractions must lie in (0, 1], got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models classifier", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--config", type=Path, help="TOML file of option defaults")
    p.add_argument("--out", type=Path, help="checkpoint to write (required)")
    p.add_argument("--data", default="digits", help="digits | digits10 | omniglot | quickdraw | folder")
    p.add_argument("--data-root", default=None, help="folder of the data set (not for digits)")
    p.add_argument("--size", type=int, default=16, help="image side in pixels")
    p.add_argument("--threshold", default="auto", help="binarisation level, 'none' or 'auto'")
    p.add_argument("--heldout-classes", type=int, default=0,
                   help="protonet/simclr: hold out this many classes (one-shot split)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--arch", default=None, help="lenet | resnet18 | conv4")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--episodes", type=int, default=500, help="protonet training episodes")
    p.add_argument("--n-way", type=int, default=20, help="protonet classes per episode")
    p.add_argument("--n-query", type=int, default=5, help="protonet queries per class and episode")
    p.add_argument("--rotations", action="store_true", help="protonet: rotations by 90 deg make new classes")
    p.add_argument("--affine", action="store_true", help="protonet: a random affine distortion of every episode image")
    p.add_argument("--within-alphabet", type=float, default=0.0, metavar="F",
                   help="protonet: share of episodes drawn from one alphabet (Omniglot), 0-1")
    p.add_argument("--test-shift", type=int, default=0, metavar="R",
                   help=f"protonet: classify with the embedding averaged over shifts of up to R px "
                        f"(0-{MAX_TEST_SHIFT})")
    p.add_argument("--eval-runs", type=Path, default=None, help="protonet: all_runs.zip to score on")
    p.add_argument("--fake-manifest", type=Path, default=None, help="realfake: stimulus manifest of samples")
    p.add_argument("--model", default=None, help="realfake: use only this model's samples")
    p.add_argument("--sweep", type=_fractions, default=None, help="realfake: training fractions to sweep")
    p.add_argument("--fill", type=float, default=DEFAULT_FILL, help="feedback: value of unrevealed pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda if available)")
    add_progress_flag(p)
    return p


def _apply_config(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    first = parser.parse_args(argv)
    if first.config is None:
        return first
    try:
        table = tomllib.loads(first.config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"--config: cannot read {str(first.config)!r} ({exc})") from exc
    known = {a.dest for a in parser._actions}
    unknown = sorted(k for k in table if k.replace("-", "_") not in known)
    if unknown:
        raise CliError(f"--config: unknown option(s) {', '.join(unknown)}")
    parser.set_defaults(**{k.replace("-", "_"): v for k, v in table.items()})
    return parser.parse_args(argv)


def _dataset(args: argparse.Namespace):
    from models.data import load_dataset

    threshold: Any = args.threshold
    if isinstance(threshold, str) and threshold not in ("auto", "none"):
        try:
            threshold = float(threshold)
        except ValueError as exc:
            raise CliError(f"--threshold: expected a number, 'none' or 'auto', got {threshold!r}") from exc
    threshold = None if threshold == "none" else threshold
    return load_dataset(args.data, args.data_root, args.size, threshold=threshold)


def _manifest_images(path: Path, model: str | None, size: int) -> tuple[torch.Tensor, list[dict]]:
    from models.attribution.manifest import load_images, read_manifest

    rows = [r for r in read_manifest(path) if r["source"] == "model" and (model is None or r["model"] == model)]
    if not rows:
        raise CliError(f"--fake-manifest: no model samples{' of ' + model if model else ''} in {path}")
    return load_images(path.parent if path.is_file() else path, rows, size), rows


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from models.classifiers import feedback, nway, protonet, realfake, simclr
    from models.classifiers.store import save_classifier
    from models.data import one_shot_split
    from models.device import pick_device

    device = pick_device(args.device)
    data = _dataset(args)
    common = {"device": device, "seed": args.seed, "progress": args.progress}
    opt = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr)) if v is not None}
    config: dict[str, Any] = {"data": data.name, "size": data.size, "seed": args.seed}
    meta: dict[str, Any] = {"dataset_hash": data.content_hash()}
    summary: dict[str, Any] = {}
    if args.kind in ("protonet", "simclr") and args.heldout_classes:
        data, _held, record = one_shot_split(data, args.heldout_classes, args.split_seed)
        meta["split"] = record
    if args.kind == "realfake":
        if args.fake_manifest is None:
            raise CliError("--fake-manifest: realfake needs a manifest of model samples")
        fakes, _rows = _manifest_images(args.fake_manifest, args.model, data.size)
        arch = args.arch or "lenet"
        # balanced classes, as in the Facade study: as many real images (seeded draw) as samples
        gen = torch.Generator().manual_seed(args.seed)
        real = data.images[torch.randperm(len(data), generator=gen)[: len(fakes)]]
        if args.sweep:
            points = realfake.fraction_sweep(real, fakes, fractions=args.sweep, arch=arch,
                                             epochs=args.epochs or 10, device=device, seed=args.seed)
            summary["sweep"] = [p.as_dict() for p in points]
        net = realfake.train_realfake(real, fakes, arch=arch, **opt, **common)
        summary.update(n_real=len(real), n_fake=len(fakes))
        config.update(kind="realfake_classifier", arch=arch, n_classes=2, class_names=list(realfake.CLASS_NAMES),
                      label_column="source", model=args.model or "all")
    elif args.kind == "nway":
        arch = args.arch or "conv4"
        net = nway.train_nway(data.images, data.labels, len(data.class_names), arch=arch, **opt, **common)
        config.update(kind="nway_classifier", arch=arch, n_classes=len(data.class_names),
                      class_names=data.class_names, label_column="class_label")
    elif args.kind == "protonet":
        if not 0.0 <= args.within_alphabet <= 1.0:
            raise CliError(f"--within-alphabet: a share in [0, 1], got {args.within_alphabet}")
        if not 0 <= args.test_shift <= MAX_TEST_SHIFT:
            raise CliError(f"--test-shift: pixels in [0, {MAX_TEST_SHIFT}], got {args.test_shift}")
        if args.within_alphabet > 0:
            try:
                protonet.check_alphabets(data.class_names, args.n_way, data.name)
            except ValueError as exc:
                raise CliError(f"--within-alphabet: {exc}") from None
        recipe = protonet.CriticRecipe(episodes=args.episodes, n_way=args.n_way, n_query=args.n_query,
                                       rotations=args.rotations, affine=args.affine, lr=args.lr or 1e-3,
                                       within_alphabet=args.within_alphabet, test_shift=args.test_shift)
        net = protonet.train_critic(data.images, data.labels, recipe, class_names=data.class_names, **common)
        config.update(kind="protonet", episodes=args.episodes, n_way=args.n_way, n_query=args.n_query,
                      rotations=args.rotations, affine=args.affine, within_alphabet=args.within_alphabet,
                      test_shift=args.test_shift)
        if args.eval_runs is not None:
            from models.classifiers.omniglot_runs import HUMAN_ERROR, load_one_shot_runs

            runs = load_one_shot_runs(args.eval_runs, data.size)
            error = 1.0 - protonet.one_shot_accuracy(net, runs, device=device)
            summary.update(one_shot_runs_error=error, human_error=HUMAN_ERROR, n_runs=len(runs))
            meta["one_shot_runs_error"] = error
    elif args.kind == "simclr":
        net = simclr.train_simclr(data.images, epochs=args.epochs or 20, batch_size=args.batch_size or 128,
                                  lr=args.lr or 1e-3, **common)
        config.update(kind="simclr", tau=0.5)
    else:
        clf = feedback.FeedbackClassifier.train(data.images, data.labels, data.class_names,
                                                arch=args.arch or "lenet", fill=args.fill, **opt, **common)
        config.update(clf.config())
        net = clf.net
    path = save_classifier(args.out, net, config, meta)
    return {"checkpoint": str(path), "kind": config["kind"], **summary}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m models classifier`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()

    def work() -> dict[str, Any]:
        args = _apply_config(parser, argv)
        if args.out is None:
            raise CliError("--out: the checkpoint path is required")
        return _train(args)

    return run_json_command(work)
