"""`python -m models COMMAND ...`: train, sample, merge; classifier/attribute/data go to their packages.

Errors in the user's input (config fields, missing folders, mismatched checkpoints, bad options)
print one line `error: ...` naming the field or option and exit with status 2 -- no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from models.checkpoint import CheckpointError
from models.cliutil import add_progress_flag, parse_shard
from models.diffusion.samplers import SAMPLERS

DELEGATES = {
    "classifier": "models.classifiers.cli",
    "attribute": "models.attribution.cli",
    "data": "models.data.cli",
}
DEFAULT_CHECKPOINT_ROOT = Path("data/checkpoints")
# torch CPU threads of every command that runs a network (train, sample, classifier, attribute)
# unless --threads or OMP_NUM_THREADS says otherwise: one thread trained the tiny configs several
# times faster than two on 2 shared cores (BENCHMARKS.md, section threads).
DEFAULT_THREADS = 1
TORCH_DELEGATES = ("classifier", "attribute")
THREADS_HELP = f"torch CPU threads (default {DEFAULT_THREADS}, or OMP_NUM_THREADS when set)"


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip() != ""]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected one or more scales >= 0, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a diffusion model from a TOML config")
    t.add_argument("config", help="TOML config (see models/configs/)")
    t.add_argument("--out", help="output folder (default data/checkpoints/NAME)")
    t.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--data-root", help="override data.root")
    t.add_argument("--steps", type=int, help="override training.steps")
    t.add_argument("--threads", type=int, help=THREADS_HELP)
    add_progress_flag(t)

    s = sub.add_parser("sample", help="sample stimuli + manifest from checkpoints")
    s.add_argument("checkpoints", nargs="+", help="one or more checkpoint.pt files")
    s.add_argument("--out", required=True, help="stimuli folder (PNGs + manifest.csv/json)")
    s.add_argument("--n-per-class", type=int, default=4)
    s.add_argument("--guidance", type=_floats, help="comma-separated scales w (default: config)")
    s.add_argument("--sampler", choices=list(SAMPLERS), help="default: the config's sampling.sampler")
    s.add_argument("--steps", type=int, help="DDIM steps (default: config; DDPM always uses T)")
    s.add_argument("--eta", type=float, help="DDIM eta (default: config)")
    s.add_argument("--real", type=int, default=0, help="real held-out images per class")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--shard", type=parse_shard, default=(0, 1), help="i/n: this process's share")
    s.add_argument("--device", default=None)
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--max-classes", type=int, help="only the first K classes")
    s.add_argument("--set-size", type=int, default=1, help="FSDM context set size (exemplar first)")
    s.add_argument("--split", choices=["auto", "heldout", "train"], default="auto")
    s.add_argument("--data-root", help="where the checkpoint's data set lives now")
    s.add_argument("--config", help="refuse checkpoints whose config differs from this TOML")
    s.add_argument("--postprocess", choices=["binarise", "none"], default="binarise",
                   help="threshold samples at 0 like the binarised real images (default) or keep grey")
    s.add_argument("--threads", type=int, help=THREADS_HELP)
    add_progress_flag(s)

    m = sub.add_parser("merge", help="merge manifest.shard*of*.json files into manifest.csv/json")
    m.add_argument("folder")
    for name in DELEGATES:
        sub.add_parser(name, help=f"{name} commands (python -m models {name} --help)", add_help=False)
    return p


def _train(args: argparse.Namespace) -> int:
    from models.config import load_config
    from models.diffusion.training import train

    cfg = load_config(args.config)
    if args.data_root:
        cfg = cfg.replace("data", root=args.data_root)
    if args.steps is not None:
        cfg = cfg.replace("training", steps=args.steps)
    out = Path(args.out) if args.out else DEFAULT_CHECKPOINT_ROOT / cfg.name
    result = train(cfg, out, device=args.device, resume=args.resume, progress=args.progress)
    if result.metrics.get("world_size", 1) == 1 or _rank() == 0:
        m = result.metrics
        print(f"checkpoint: {result.checkpoint}  steps {m['steps']}  loss {m['loss_first']:.4f} -> "
              f"{m['loss_last']:.4f}  {m['images_per_s']:.0f} images/s on {m['device']}")
    return 0


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _sample(args: argparse.Namespace) -> int:
    from models.config import load_config
    from models.diffusion.store import load_diffusion
    from models.sample import SamplingOptions, run_sampling

    if args.config:
        cfg = load_config(args.config)
        for path in args.checkpoints:
            load_diffusion(path, "cpu", config=cfg)
    options = SamplingOptions(
        n_per_class=args.n_per_class, guidance=args.guidance, sampler=args.sampler, steps=args.steps,
        eta=args.eta, real_per_class=args.real, seed=args.seed, shard=args.shard, batch_size=args.batch_size,
        max_classes=args.max_classes, set_size=args.set_size, use_split=args.split,
        dataset_root=args.data_root, postprocess=args.postprocess,
    )
    path = run_sampling(args.checkpoints, args.out, options, device=args.device, progress=args.progress)
    print(f"manifest: {path}")
    return 0


def _delegate(name: str, argv: list[str]) -> int:
    try:
        module = importlib.import_module(DELEGATES[name])
    except ModuleNotFoundError as exc:
        if exc.name and DELEGATES[name].startswith(exc.name):
            print(f"error: `python -m models {name}` needs {DELEGATES[name]}, which is not installed "
                  "in this checkout", file=sys.stderr)
            return 2
        raise
    return int(module.main(argv) or 0)


def cpu_threads(option: int | None) -> int:
    """The torch CPU threads of a command: `--threads` (train, sample), else OMP_NUM_THREADS,
    else DEFAULT_THREADS."""
    if option is not None:
        return option
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(env) if env.isdigit() and int(env) >= 1 else DEFAULT_THREADS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATES:
        if argv[0] in TORCH_DELEGATES:
            import torch

            torch.set_num_threads(cpu_threads(None))
        return _delegate(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    if args.command in {"train", "sample"}:
        threads = cpu_threads(args.threads)
        if threads < 1:
            print("error: --threads: must be >= 1", file=sys.stderr)
            return 2
        import torch

        torch.set_num_threads(threads)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "sample":
            return _sample(args)
        from models.sample import merge_manifests

        print(f"manifest: {merge_manifests(args.folder)}")
        return 0
    except (CheckpointError, ValueError, FileNotFoundError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 2
