"""Known-truth attribution benchmark: which model maps find the region that decides the class?

`python -m benchmarks attribution_truth [--device cpu] [--quick] [--no-write]`

Data: models.data.marks, images of random strokes with one class mark in a random corner; only
the mark decides the class, so its box is the known diagnostic region. Models, trained here on
the same data: a class-conditional CFGDM (the tiny UNet, context dropout 0.2) and classifiers
(LeNet, ResNet-18). Every map method is scored on held-out images (model samples for the
sampling-path score, whose mark is found by template matching) by mass in the region, the
pointing game and Spearman with the mask, with bootstrap CIs over images, and by the
model-parameter randomisation check (analysis.map_checks). A method works when it passes both.

A second table measures how the diffusion maps depend on their noise draws, the image and the
condition, as draws and timesteps grow, on the marks CFGDM and on the tiny profile's digits
CFGDM (exemplar context, the model whose maps the study pipeline compares with people).

Writes the section `attribution-truth` of BENCHMARKS.md and the verdicts to
models/attribution/known_truth.json, which the study report reads to say whether a method's
alignment with people can mean anything.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import json
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis import map_checks
from analysis.maps import rowwise_spearman
from benchmarks.report import ROOT, markdown_table, write_section
from models.attribution import methods as M
from models.checkpoint import read_checkpoint
from models.classifiers.backbones import build_classifier
from models.classifiers.training import accuracy, fit_classifier, random_shift
from models.cliutil import add_progress_flag
from models.config import config_from_dict, load_config
from models.data.marks import find_marks, make_marks
from models.device import pick_device
from models.diffusion.store import load_diffusion
from models.diffusion.training import load_training_data, train
from models.sample import schedule_of

VERDICTS = ROOT / "models" / "attribution" / "known_truth.json"
CLASSIFIER_METHODS = ("saliency", "integrated_gradients", "smoothgrad", "gradcam", "occlusion")
DIFFUSION_METHODS = ("diffusion_score", "diffusion_score_noised", "guidance_difference", "conditional_gain",
                     "denoising_loss_saliency", "denoising_loss_ig")
SWEPT = ("diffusion_score_noised", "guidance_difference", "conditional_gain", "denoising_loss_saliency")

Maps = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run (`quick` shrinks everything for the test suite)."""

    n_per_class: int = 400
    diffusion_steps: int = 2000
    classifier_epochs: int = 15
    n_test: int = 64
    n_draws: int = 8
    n_timesteps: int = 10
    archs: tuple[str, ...] = ("lenet", "resnet18")
    draws_sweep: tuple[int, ...] = (1, 2, 4, 8, 16)
    timesteps_sweep: tuple[int, ...] = (5, 10, 20)
    n_reliability: int = 32
    digits_steps: int = 700
    n_boot: int = 1000


QUICK = Settings(n_per_class=60, diffusion_steps=150, classifier_epochs=3, n_test=16, n_draws=2, archs=("lenet",),
                 draws_sweep=(1, 2), timesteps_sweep=(5,), n_reliability=6, digits_steps=30, n_boot=200)


# ---- models ------------------------------------------------------------------------------------


def marks_cfgdm_config(s: Settings, seed: int) -> dict[str, Any]:
    return {"name": "cfgdm_marks", "seed": seed,
            "data": {"dataset": "marks", "size": 16, "heldout_classes": 0, "max_per_class": s.n_per_class},
            "model": {"context": "class", "n_feat": 16, "channel_mults": [1, 2], "n_res": 1},
            "training": {"steps": s.diffusion_steps, "batch_size": 64, "lr": 2e-3, "warmup": 100,
                         "p_uncond": 0.2, "log_every": 100, "checkpoint_every": 100000}}


REUSED: set[str] = set()  # diffusion models this run found finished in the cache


def train_diffusion(cfg_dict: dict[str, Any], out: Path, device: torch.device, progress: bool):
    """Train (or reuse the finished checkpoint of) a diffusion config; (net, schedule, cfg)."""
    cfg = config_from_dict(cfg_dict)
    ckpt = out / cfg.name / "checkpoint.pt"
    if ckpt.exists() and read_checkpoint(ckpt)["meta"].get("metrics", {}).get("steps") == cfg.training.steps:
        REUSED.add(cfg.name)
    result = train(cfg, out / cfg.name, device=device, resume=True, progress=progress)
    net, cfg, _meta = load_diffusion(result.checkpoint, device)
    return net.eval(), schedule_of(cfg), cfg


def train_classifiers(s: Settings, train_set, test_x, test_y, device, seed: int) -> dict[str, tuple[nn.Module, float]]:
    """Each arch trained on the marks training images (shifted by up to 1 px); (net, test accuracy)."""
    out = {}
    for arch in s.archs:
        torch.manual_seed(seed)
        net = build_classifier(arch, len(train_set.class_names))
        fit_classifier(net, train_set.images, train_set.labels, epochs=s.classifier_epochs, device=device,
                       seed=seed, augment=random_shift)
        out[arch] = (net.eval(), accuracy(net, test_x, test_y, device=device))
    return out


def reinitialised(net: nn.Module, seed: int) -> nn.Module:
    """A copy of `net` with every layer's parameters drawn afresh (the randomisation check);
    weights a layer initialises to zero (the UNet's output conv) get small Gaussian values, so
    the random network does not predict a constant."""
    twin = copy.deepcopy(net)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in twin.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        for p in twin.parameters():
            if p.ndim > 1 and not bool(p.detach().abs().sum()):
                nn.init.normal_(p, std=0.05)
    return twin.eval()


# ---- maps --------------------------------------------------------------------------------------


def classifier_maps(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device, seed: int) -> Maps:
    return {
        "saliency": M.saliency(net, x, y, device=device),
        "integrated_gradients": M.integrated_gradients(net, x, y, n_steps=32, device=device),
        "smoothgrad": M.smoothgrad(net, x, y, nt_samples=16, stdev=0.3, seed=seed, device=device),
        "gradcam": M.gradcam(net, x, y, device=device),
        "occlusion": M.occlusion(net, x, y, window=3, device=device),
    }


def diffusion_image_maps(net, schedule, x, ctx, s: Settings, seeds: list[int], device,
                         methods: tuple[str, ...] = DIFFUSION_METHODS[1:]) -> Maps:
    """The diffusion methods that take an image, with the benchmark's draws and timesteps."""
    ts = M.default_timesteps(schedule.T, s.n_timesteps)
    kw = {"timesteps": ts, "seeds": seeds, "device": device}
    fns: dict[str, Callable[[], np.ndarray]] = {
        "diffusion_score_noised": lambda: M.diffusion_score_noised(net, schedule, x, ctx, w=1.0, n_draws=s.n_draws, **kw),
        "guidance_difference": lambda: M.guidance_difference(net, schedule, x, ctx, n_draws=s.n_draws, **kw),
        "conditional_gain": lambda: M.conditional_gain(net, schedule, x, ctx, n_draws=s.n_draws, **kw),
        "denoising_loss_saliency": lambda: M.denoising_loss_saliency(net, schedule, x, ctx, n_draws=s.n_draws, **kw),
        "denoising_loss_ig": lambda: M.denoising_loss_ig(net, schedule, x, ctx, n_draws=max(1, s.n_draws // 4),
                                                         n_steps=16, **kw),
    }
    return {m: fns[m]() for m in methods}


def sampling_path(net, schedule, labels: torch.Tensor, seeds: list[int], device):
    """The guided-noise score along DDIM-20 paths at w = 1 of samples of `labels`, and the
    samples' own known truth: (maps, masks, found)."""
    maps, samples = M.diffusion_score(net, schedule, labels, len(labels), w=1.0, steps=20, seeds=seeds,
                                      image_shape=(1, 16, 16), device=device)
    masks, found = find_marks(samples, labels)
    return maps, masks, found


# ---- scoring -----------------------------------------------------------------------------------


def score(trained: np.ndarray, randomised: np.ndarray, masks: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    out = map_checks.summarise_region_scores(map_checks.region_scores(trained, masks), n_boot, seed)
    out.update(map_checks.randomisation_check(trained, randomised, n_boot, seed))
    out["works"] = bool(out["passes_region"] and out["passes_randomisation"])
    return out


def verdict_text(r: dict[str, Any]) -> str:
    if r["works"]:
        return "works"
    why = []
    if not r["passes_region"]:
        why.append("misses the region")
    if not r["passes_randomisation"]:
        why.append("same with random weights")
    return "**FAILS**: " + ", ".join(why)


def known_truth(s: Settings, net, schedule, device, seed: int) -> tuple[list[dict], dict]:
    """Train the classifiers, make every method's maps (of the marks CFGDM `net` and of the
    classifiers) on held-out images, score them."""
    test = make_marks(max(1, s.n_test // 4), 16, seed=seed + 1000)
    x, y, masks = test.data.images[: s.n_test], test.data.labels[: s.n_test], test.masks[: s.n_test]
    seeds = [seed * 100_003 + i for i in range(len(x))]
    rows: list[dict] = []
    info: dict[str, Any] = {}

    rand_net = reinitialised(net, seed + 1)
    trained_maps = diffusion_image_maps(net, schedule, x, y, s, seeds, device)
    random_maps = diffusion_image_maps(rand_net, schedule, x, y, s, seeds, device)
    for m in DIFFUSION_METHODS[1:]:
        rows.append({"model": "CFGDM (class)", "method": m, "images": "held-out",
                     **score(trained_maps[m], random_maps[m], masks, s.n_boot, seed)})
    path_maps, path_masks, found = sampling_path(net, schedule, y, seeds, device)
    rand_path, _m, _f = sampling_path(rand_net, schedule, y, seeds, device)
    info["samples_with_mark"] = float(found.mean())
    if found.sum() >= 2:
        rows.insert(0, {"model": "CFGDM (class)", "method": "diffusion_score", "images": f"own samples ({int(found.sum())})",
                        **score(path_maps[found], rand_path[found], path_masks[found], s.n_boot, seed)})

    train_set = make_marks(s.n_per_class, 16, seed=seed).data
    for arch, (clf, acc) in train_classifiers(s, train_set, x, y, device, seed).items():
        info[f"{arch}_test_accuracy"] = acc
        cm = classifier_maps(clf, x, y, device, seed)
        rm = classifier_maps(reinitialised(clf, seed + 1), x, y, device, seed)
        for m in CLASSIFIER_METHODS:
            rows.append({"model": arch, "method": m, "images": "held-out", **score(cm[m], rm[m], masks, s.n_boot, seed)})
    return rows, info


# ---- reliability -------------------------------------------------------------------------------


def reliability(net, schedule, x, ctx, other_ctx, s: Settings, device, seed: int, ink: np.ndarray | None,
                label: str) -> list[dict]:
    """Split-half reliability (two maps from disjoint noise draws), between-image similarity,
    dependence on the condition (own vs another class's condition, same draws) and, for the
    digits, Spearman with the ink, over draws (at n_timesteps) and timesteps (at n_draws)."""
    n = len(x)
    seeds_a = [seed * 7919 + i for i in range(n)]
    seeds_b = [seed * 7919 + 50_000 + i for i in range(n)]
    grid = [(d, s.n_timesteps) for d in s.draws_sweep] + [(s.n_draws, k) for k in s.timesteps_sweep
                                                         if k != s.n_timesteps]
    rows = []
    for d, k in grid:
        cfg = dataclasses.replace(s, n_draws=d, n_timesteps=k)
        a = diffusion_image_maps(net, schedule, x, ctx, cfg, seeds_a, device, SWEPT)
        b = diffusion_image_maps(net, schedule, x, ctx, cfg, seeds_b, device, SWEPT)
        o = diffusion_image_maps(net, schedule, x, other_ctx, cfg, seeds_a, device, SWEPT)
        for m in SWEPT:
            row = {"model": label, "method": m, "n_draws": d, "n_timesteps": k,
                   "split_half": float(np.nanmean(map_checks.split_half_reliability(a[m], b[m]))),
                   "between_images": map_checks.between_image_similarity(a[m]),
                   "own_vs_other_condition": float(np.nanmean(rowwise_spearman(a[m], o[m])))}
            if ink is not None:
                row["spearman_ink"] = float(np.nanmean(rowwise_spearman(a[m], ink)))
            rows.append(row)
    return rows


def digits_cfgdm(s: Settings, out: Path, device, seed: int, progress: bool):
    """The tiny profile's digits CFGDM (exemplar context, trained as the profile trains it) and
    held-out digits with their own class's exemplar and another class's."""
    base = load_config(ROOT / "models" / "configs" / "tiny_cfgdm.toml").to_dict()
    base["training"] = {**base["training"], "steps": s.digits_steps, "log_every": 50, "checkpoint_every": 100000}
    base["name"] = "cfgdm_digits"
    net, schedule, cfg = train_diffusion(base, out, device, progress)
    _train, heldout, split = load_training_data(cfg)
    rng = np.random.default_rng(seed)
    idx = torch.as_tensor(np.sort(rng.choice(len(heldout), s.n_reliability, replace=False)))
    x = heldout.images[idx]
    pos = {i: k for k, i in enumerate(heldout.ids)}
    names = heldout.class_names
    ex_of = {c: heldout.images[pos[split["exemplars"][c]]] for c in names}
    labels = heldout.labels[idx].tolist()
    own = torch.stack([ex_of[names[c]] for c in labels])
    other = torch.stack([ex_of[names[(c + 1) % len(names)]] for c in labels])
    ink = (x[:, 0].numpy() + 1.0) / 2.0
    return net, schedule, x, own, other, ink


# ---- report ------------------------------------------------------------------------------------


def _ci(r: dict, name: str, digits: int = 2) -> str:
    return f"{r[name]:.{digits}f} [{r[name + '_lo']:.{digits}f}, {r[name + '_hi']:.{digits}f}]"


def truth_table(rows: list[dict]) -> str:
    body = [[r["model"], f"`{r['method']}`", r["images"], f"{r['chance']:.3f}", _ci(r, "mass_in_region"),
             _ci(r, "pointing_game"), _ci(r, "spearman_mask"), _ci(r, "randomisation_spearman"), verdict_text(r)]
            for r in rows]
    return markdown_table(["model", "method", "images", "chance", "mass in region [95% CI]",
                           "pointing game [95% CI]", "Spearman with mask [95% CI]",
                           "Spearman trained vs random weights [95% CI]", "verdict"], body)


def reliability_table(rows: list[dict]) -> str:
    has_ink = any("spearman_ink" in r for r in rows)
    head = ["model", "method", "draws", "timesteps", "split-half", "between images", "own vs other condition"]
    body = []
    for r in rows:
        line = [r["model"], f"`{r['method']}`", r["n_draws"], r["n_timesteps"], f"{r['split_half']:.2f}",
                f"{r['between_images']:.2f}", f"{r['own_vs_other_condition']:.2f}"]
        if has_ink:
            line.append(f"{r['spearman_ink']:.2f}" if "spearman_ink" in r else "")
        body.append(line)
    return markdown_table(head + (["Spearman with ink"] if has_ink else []), body)


def smallest_reliable(rows: list[dict], method: str, model: str, n_timesteps: int, target: float) -> int | None:
    """The fewest draws (at n_timesteps) whose split-half reliability reaches `target`."""
    ok = sorted(r["n_draws"] for r in rows if r["method"] == method and r["model"] == model
                and r["n_timesteps"] == n_timesteps and r["split_half"] >= target)
    return ok[0] if ok else None


def verdicts(rows: list[dict]) -> dict[str, dict[str, Any]]:
    """Per method: `works` when it works on every model it was tested on, and each model's scores."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault(r["method"], {"works": True, "models": {}})
        entry["works"] = bool(entry["works"] and r["works"])
        entry["models"][r["model"]] = {k: r[k] for k in ("works", "passes_region", "passes_randomisation", "chance",
                                                         "mass_in_region", "pointing_game", "spearman_mask",
                                                         "randomisation_spearman")}
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks attribution_truth")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=ROOT / "data" / "bench" / "attribution_truth",
                   help="folder for the trained models (reused when finished)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (the test suite's run)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md and the verdicts")
    add_progress_flag(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    s = QUICK if args.quick else Settings()
    progress = args.progress
    start_wall, start_cpu = time.perf_counter(), time.process_time()

    mnet, msched, _ = train_diffusion(marks_cfgdm_config(s, args.seed), args.cache, device, progress)
    rows, info = known_truth(s, mnet, msched, device, args.seed)
    t_truth = time.perf_counter() - start_wall

    test = make_marks(max(1, s.n_reliability // 4), 16, seed=args.seed + 2000)
    mx, my = test.data.images[: s.n_reliability], test.data.labels[: s.n_reliability]
    rel = reliability(mnet, msched, mx, my, (my + 1) % 4, s, device, args.seed, None, "CFGDM marks (class)")
    dnet, dsched, dx, own, other, ink = digits_cfgdm(s, args.cache, device, args.seed, progress)
    rel += reliability(dnet, dsched, dx, own, other, s, device, args.seed, ink, "CFGDM digits (exemplar)")
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime

    result = {"settings": dataclasses.asdict(s), "seed": args.seed, "device": str(device), "info": info,
              "known_truth": rows, "reliability": rel, "wall_s": wall, "cpu_s": cpu + cpu_children,
              "date": dt.date.today().isoformat()}
    cmd = "python -m benchmarks attribution_truth" + (" --quick" if args.quick else "") + (
        f" --device {args.device}" if args.device != "cpu" else "")
    choice = {m: smallest_reliable(rel, m, "CFGDM digits (exemplar)", s.n_timesteps, 0.9) for m in SWEPT}
    md = "\n\n".join([
        "### Known-truth attribution benchmark\n\n"
        f"Marks data (16 px, 4 classes, a 4x4 class mark in a random corner, strokes elsewhere; "
        f"chance = the mark's share of the image). {s.n_test} held-out images; CFGDM trained "
        f"{s.diffusion_steps} steps (class context, p_uncond 0.2), classifiers {s.classifier_epochs} epochs "
        f"(test accuracy: " + ", ".join(f"{k.split('_')[0]} {v:.2f}" for k, v in info.items() if k.endswith("accuracy"))
        + f"); diffusion maps with {s.n_draws} noise draws x {s.n_timesteps} timesteps; "
        f"{100 * info['samples_with_mark']:.0f}% of the CFGDM's samples show their class's mark (the "
        "sampling-path score is scored on those). A method **works** when mass, pointing game and Spearman "
        "all lie above chance (CI lower ends) and its maps change when the model's weights are "
        f"randomised (CI upper end of the trained-vs-random Spearman below {map_checks.RANDOMISATION_LIMIT}).",
        truth_table(rows),
        "### Diffusion maps: noise draws, image and condition\n\n"
        "Split-half = Spearman between two maps of one image from disjoint noise draws (the "
        "reliability of a map with that many draws); between images = mean Spearman between maps of "
        "different images (high = the same layout whatever the image); own vs other condition = "
        "Spearman between an image's maps under its own class (or exemplar) and another's "
        f"(1 = the condition does not matter). {s.n_reliability} images per model.",
        reliability_table(rel),
        "Fewest draws with split-half >= 0.9 on the digits CFGDM at "
        f"{s.n_timesteps} timesteps: " + ", ".join(f"`{m}` {v if v else 'none measured'}" for m, v in choice.items()),
        f"Command: `{cmd}` ({device.type}, {args.threads} torch threads, "
        f"{platform.processor() or platform.machine()}); {wall / 60:.1f} min wall, "
        f"{(cpu + cpu_children) / 60:.1f} min CPU (known-truth part {t_truth / 60:.1f} min wall)"
        + (f"; the diffusion models {', '.join(sorted(REUSED))} came from the cache ({args.cache}), so "
           "these times leave out their training." if REUSED else ", training included."),
    ])
    print(md)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float))
    if not args.no_write:
        write_section("attribution-truth", md)
        VERDICTS.write_text(json.dumps({"command": cmd, "date": result["date"], "methods": verdicts(rows)},
                                       indent=1) + "\n")
    return 0
