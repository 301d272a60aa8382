"""`python -m models attribute ...`: model maps for every stimulus of a manifest.

  python -m models attribute --manifest stimuli/ --checkpoint critic.pt \
      --methods saliency,integrated_gradients --out maps/ [--shard 0/4]
  python -m models attribute --manifest stimuli/ --checkpoint cfgdm.pt \
      --methods diffusion_score,denoising_loss_saliency --out maps/
  python -m models attribute --merge maps/

Classifier checkpoints (nway, realfake, feedback) give saliency, integrated_gradients,
smoothgrad, gradcam and occlusion maps for a target class (the stimulus's class, or `fake` for
real-vs-fake); diffusion checkpoints give diffusion_score (the sampling path of the checkpoint's
own samples, remade from their seeds), diffusion_score_noised, guidance_difference,
conditional_gain, denoising_loss_saliency and denoising_loss_ig (docs/attribution.md says what
each shows and which pass the known-truth benchmark). Maps are written per docs/formats.md section 4; a shard i/n takes every n-th
stimulus in id order and writes index.shard{i}of{n}.json, and `--merge` joins the shards.
Random draws are seeded per stimulus id, so a shard gives the maps the unsharded run gives.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from models.attribution import methods as M
from models.attribution.manifest import load_images, manifest_file, read_manifest
from models.attribution.store import merge_shards, write_maps
from models.cliutil import add_progress_flag, parse_shard, run_json_command

CLASSIFIER_METHODS = ("saliency", "integrated_gradients", "smoothgrad", "gradcam", "occlusion")
DIFFUSION_METHODS = ("diffusion_score", "diffusion_score_noised", "guidance_difference", "conditional_gain",
                     "denoising_loss_saliency", "denoising_loss_ig")


class CliError(ValueError):
    """A bad option or input; the message names it."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models attribute", description="Model maps for a stimulus manifest.")
    p.add_argument("--manifest", type=Path, help="manifest.json/.csv or the folder holding it")
    p.add_argument("--checkpoint", type=Path, help="a classifier or diffusion checkpoint")
    p.add_argument("--methods", default=None, help="comma-separated; default: all of the checkpoint's kind")
    p.add_argument("--out", type=Path, help="maps folder (METHOD/STIMULUS_ID.npy)")
    p.add_argument("--merge", type=Path, default=None, help="join the shard indexes of a maps folder")
    p.add_argument("--shard", type=parse_shard, default=(0, 1), help="i/n: this run's share of the stimuli")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0, help="base of the per-stimulus seeds")
    p.add_argument("--target", default="label", help="classifiers: label | predicted | a class name")
    p.add_argument("--n-steps", type=int, default=32, help="integrated gradients steps")
    p.add_argument("--nt-samples", type=int, default=16, help="smoothgrad samples")
    p.add_argument("--stdev", type=float, default=0.3, help="smoothgrad noise std (image units)")
    p.add_argument("--window", type=int, default=3, help="occlusion window side")
    p.add_argument("--w", type=float, default=1.0, help="guidance scale of the noised diffusion score")
    p.add_argument("--n-draws", type=int, default=None,
                   help="noise draws per timestep (default: each method's own, chosen from measured map "
                        "reliability: docs/attribution.md)")
    p.add_argument("--n-timesteps", type=int, default=10, help="kept timesteps (evenly spaced over 1..T)")
    p.add_argument("--data-root", default=None, help="diffusion: the data the checkpoint was trained on")
    p.add_argument("--set-size", type=int, default=None, help="diffusion set models: context size")
    add_progress_flag(p)
    return p


def stimulus_seed(base: int, stimulus_id: str) -> int:
    """The seed of a stimulus's random draws: a function of its id only (shards agree)."""
    return (base * 1_000_003 + zlib.crc32(stimulus_id.encode())) % (2**31 - 1)


def _batches(rows: list[dict], size: int, desc: str, quiet: bool):
    with tqdm(total=len(rows), desc=desc, unit="img", disable=quiet) as bar:
        for s in range(0, len(rows), size):
            chunk = rows[s : s + size]
            yield chunk
            bar.update(len(chunk))


def _to_png_grid(maps: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Maps (N, h, w) resampled bilinearly to the stimulus grid (H, W), clamped at 0."""
    if maps.shape[-2:] == shape:
        return maps
    up = F.interpolate(torch.from_numpy(maps)[:, None], size=shape, mode="bilinear", align_corners=False)
    return up[:, 0].clamp(min=0).numpy()


def _classifier_maps(args, rows, base, methods, device) -> dict[str, Any]:
    from models.classifiers.store import load_classifier

    net, config, _meta = load_classifier(args.checkpoint, device)
    if config["kind"] in ("protonet", "simclr"):
        raise CliError(f"--checkpoint: a {config['kind']} has no class logits to attribute")
    names = list(config.get("class_names") or [])
    size = int(config.get("size") or 0) or None
    params = {"target": args.target, "n_steps": args.n_steps, "nt_samples": args.nt_samples,
              "stdev": args.stdev, "window": args.window, "seed": args.seed, "baseline": -1.0}
    is_realfake = config["kind"] == "realfake_classifier"
    targets, skipped, keep = [], {}, []
    for r in rows:
        if args.target == "predicted":
            targets.append(-1)
        else:
            label = args.target if args.target != "label" else ("fake" if is_realfake else str(r["class_label"]))
            if label not in names:
                skipped[r["stimulus_id"]] = f"class {label!r} is not a class of the classifier"
                continue
            targets.append(names.index(label))
        keep.append(r)
    out = {m: ([], []) for m in methods}

    def smoothgrad_per_stimulus(x: torch.Tensor, t: torch.Tensor, seeds: list[int]) -> np.ndarray:
        # one seed per stimulus id, so a map does not depend on its batch or shard
        return np.concatenate([
            M.smoothgrad(net, x[i : i + 1], t[i : i + 1], nt_samples=args.nt_samples, stdev=args.stdev,
                         seed=s, device=device) for i, s in enumerate(seeds)])

    fns = {"saliency": lambda x, t, _s: M.saliency(net, x, t, device=device),
           "integrated_gradients": lambda x, t, _s: M.integrated_gradients(net, x, t, n_steps=args.n_steps,
                                                                           device=device),
           "smoothgrad": smoothgrad_per_stimulus,
           "gradcam": lambda x, t, _s: M.gradcam(net, x, t, device=device),
           "occlusion": lambda x, t, _s: M.occlusion(net, x, t, window=args.window, device=device)}
    pos = 0
    for chunk in _batches(keep, args.batch_size, "attribute", not args.progress):
        raw = load_images(base, chunk, None)
        x = load_images(base, chunk, size) if size else raw
        if config["kind"] == "feedback_classifier":
            x = -x  # the feedback net reads the PNG polarity (ink dark), see classifiers.feedback
        t = torch.tensor(targets[pos : pos + len(chunk)])
        pos += len(chunk)
        if args.target == "predicted":
            with torch.no_grad():
                t = net(x.to(device)).argmax(1).cpu()
        seeds = [stimulus_seed(args.seed, r["stimulus_id"]) for r in chunk]
        for m in methods:
            maps = _to_png_grid(fns[m](x, t, seeds), tuple(raw.shape[-2:]))
            out[m][0].extend(r["stimulus_id"] for r in chunk)
            out[m][1].append(maps)
    return {"out": out, "params": params, "skipped": skipped, "extra": {}}


def _diffusion_setup(args, device):
    from models.data import apply_split, load_dataset
    from models.diffusion.store import load_diffusion
    from models.sample import schedule_of

    net, cfg, meta = load_diffusion(args.checkpoint, device)
    d = cfg.data
    data = load_dataset(d.dataset, args.data_root or d.root, d.size, threshold=d.threshold,
                        max_per_class=d.max_per_class)
    if data.content_hash() != meta.get("dataset_hash"):
        raise CliError(f"--data-root: the data differs from what {args.checkpoint} was trained on")
    train, _heldout = apply_split(data, meta["split"])
    return net, cfg, meta, schedule_of(cfg), data, train


def _contexts(cfg, meta, data, train, rows, set_size) -> tuple[list[dict], torch.Tensor | None, dict[str, str]]:
    from models.sample import exemplar_context

    mode = cfg.model.context
    skipped, keep, ctx = {}, [], []
    for r in rows:
        sid, cls = r["stimulus_id"], str(r["class_label"])
        if mode == "none":
            keep.append(r)
        elif mode == "class":
            if cls not in train.class_names:
                skipped[sid] = f"class {cls!r} is not a training class of the model"
                continue
            keep.append(r)
            ctx.append(torch.tensor(train.class_names.index(cls)))
        else:
            eid = str(r.get("exemplar_id") or "") or meta["split"]["exemplars"].get(cls, "")
            if eid not in set(data.ids):
                skipped[sid] = f"no exemplar for class {cls!r}"
                continue
            keep.append(r)
            ctx.append(exemplar_context(mode, data, [eid], set_size)[0])
    return keep, (torch.stack(ctx) if ctx else None), skipped


def _same_checkpoint(a: str, b: Path) -> bool:
    if not a:
        return False
    pa = Path(a)
    try:
        return pa.resolve() == b.resolve() or pa.name == b.name
    except OSError:
        return pa.name == b.name


def _draws_of(method: str, given: int | None) -> int:
    """The noise draws a diffusion method runs with: `given`, else the method's own default."""
    return given if given is not None else M.default_draws(method)


def _diffusion_maps(args, rows, base, methods, device) -> dict[str, Any]:
    net, cfg, meta, schedule, data, train = _diffusion_setup(args, device)
    mf = manifest_file(args.manifest)
    gen = json.loads(mf.read_text()).get("generator", {}) if mf.suffix == ".json" else {}
    set_size = args.set_size if args.set_size is not None else int(gen.get("set_size") or 1)
    binarise = gen.get("postprocess", "binarise" if mf.suffix == ".json" else "none") == "binarise"
    keep, ctx_all, skipped = _contexts(cfg, meta, data, train, rows, set_size)
    ts = M.default_timesteps(schedule.T, args.n_timesteps)
    params = {"w": args.w, "n_draws": {m: _draws_of(m, args.n_draws) for m in methods if m != "diffusion_score"},
              "timesteps": ts, "seed": args.seed,
              "context": cfg.model.context, "baseline": -1.0, "n_steps_ig": args.n_steps}
    out = {m: ([], []) for m in methods}
    skipped_by = {m: dict(skipped) for m in methods}
    path_check: dict[str, float] = {}
    size = cfg.data.size
    index = {r["stimulus_id"]: k for k, r in enumerate(keep)}
    ctx_of = (lambda chunk: None) if ctx_all is None else (
        lambda chunk: ctx_all[[index[r["stimulus_id"]] for r in chunk]])
    image_methods = [m for m in methods if m != "diffusion_score"]
    draws = {} if args.n_draws is None else {"n_draws": args.n_draws}
    if args.n_draws is not None and args.n_draws < 1:
        raise CliError("--n-draws: must be >= 1")
    contrasts = [m for m in image_methods if m in ("guidance_difference", "conditional_gain")]
    if contrasts and cfg.model.context == "none":
        raise CliError(f"--methods: {', '.join(contrasts)} need a conditional model; {args.checkpoint} has no context")
    for chunk in _batches(keep, args.batch_size, "attribute", not args.progress):
        raw = load_images(base, chunk, None)
        x = load_images(base, chunk, size)
        seeds = [stimulus_seed(args.seed, r["stimulus_id"]) for r in chunk]
        ctx = ctx_of(chunk)
        for m in image_methods:
            kw = {"timesteps": ts, "seeds": seeds, "device": device, **draws}
            if m == "diffusion_score_noised":
                maps = M.diffusion_score_noised(net, schedule, x, ctx, w=args.w, **kw)
            elif m == "denoising_loss_ig":
                maps = M.denoising_loss_ig(net, schedule, x, ctx, n_steps=args.n_steps, **kw)
            else:
                maps = getattr(M, m)(net, schedule, x, ctx, **kw)
            out[m][0].extend(r["stimulus_id"] for r in chunk)
            out[m][1].append(_to_png_grid(maps, tuple(raw.shape[-2:])))
    if "diffusion_score" in methods:
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in keep:
            if r["source"] != "model" or not _same_checkpoint(str(r.get("checkpoint", "")), args.checkpoint):
                skipped_by["diffusion_score"][r["stimulus_id"]] = "not a sample of this checkpoint (no sampling path)"
                continue
            groups[(float(r["guidance"] or 0.0), str(r.get("sampler") or "ddim"), int(r.get("steps") or 50))].append(r)
        for (w, sampler, steps), grows in groups.items():
            for chunk in _batches(grows, args.batch_size, f"sampling path w={w}", not args.progress):
                maps, samples = M.diffusion_score(
                    net, schedule, ctx_of(chunk), len(chunk), w=w, sampler=sampler, steps=steps,
                    seeds=[int(r["seed"]) for r in chunk], image_shape=(1, size, size), device=device)
                raw = load_images(base, chunk, None)
                stim = load_images(base, chunk, size)
                if binarise:  # the sampling CLI thresholds samples at 0 before writing the PNG
                    samples = torch.where(samples >= 0, 1.0, -1.0)
                for r, s, g in zip(chunk, samples, stim, strict=True):
                    # share of pixels where the remade sample differs from the stimulus PNG
                    path_check[r["stimulus_id"]] = float(((s - g).abs() > 2.5 / 255).float().mean())
                out["diffusion_score"][0].extend(r["stimulus_id"] for r in chunk)
                out["diffusion_score"][1].append(_to_png_grid(maps, tuple(raw.shape[-2:])))
    return {"out": out, "params": params, "skipped": skipped_by, "extra": {"diffusion_score": {"path_check_mismatch": path_check}}}


def run(args: argparse.Namespace) -> list[Path]:
    """Compute and write the maps of this shard; returns the index paths written."""
    from models.checkpoint import read_checkpoint
    from models.device import pick_device

    for name in ("manifest", "checkpoint", "out"):
        if getattr(args, name) is None:
            raise CliError(f"--{name}: required (or use --merge DIR)")
    if args.batch_size < 1:
        raise CliError("--batch-size: must be >= 1")
    device = pick_device(args.device)
    kind = read_checkpoint(args.checkpoint)["kind"]
    allowed = DIFFUSION_METHODS if kind == "diffusion" else CLASSIFIER_METHODS
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else list(allowed)
    bad = [m for m in methods if m not in allowed]
    if bad or not methods:
        raise CliError(f"--methods: {', '.join(bad) or 'none'} not available for a {kind} checkpoint "
                       f"(choose from {', '.join(allowed)})")
    rows = sorted(read_manifest(args.manifest), key=lambda r: str(r["stimulus_id"]))
    i, n = args.shard
    rows = rows[i::n]
    base = manifest_file(args.manifest).parent
    result = (_diffusion_maps if kind == "diffusion" else _classifier_maps)(args, rows, base, methods, device)
    written = []
    for m in methods:
        ids, chunks = result["out"][m]
        maps = np.concatenate(chunks) if chunks else np.zeros((0, 1, 1), dtype=np.float32)
        skipped = result["skipped"].get(m, {}) if kind == "diffusion" else result["skipped"]
        written.append(write_maps(args.out, m, ids, maps, result["params"], str(args.checkpoint),
                                  shard=args.shard, skipped=skipped, extra=result["extra"].get(m)))
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m models attribute`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)

    def work() -> dict[str, list[str]]:
        paths = merge_shards(args.merge) if args.merge is not None else run(args)
        return {"indexes": [str(p) for p in paths]}

    return run_json_command(work)
