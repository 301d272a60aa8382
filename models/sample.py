"""Sampling to stimuli: PNGs plus a manifest (docs/formats.md section 1) for the study.

For exemplar and set models the classes are the split's held-out classes (one-shot generation
from each class's recorded exemplar); for class-conditional models the training classes. Real
drawings of the same classes (not the exemplar) go into the same manifest. Every sample has its
own seed and its own noise generator, so any shard (`shard=(i, n)`) makes exactly the images the
unsharded run makes, and shards merge by stimulus id (`merge_manifests`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from models.config import Config
from models.data import ImageDataset, apply_split, load_dataset
from models.data.class_text import class_text
from models.data.preprocess import tensor_to_png_array
from models.device import pick_device
from models.diffusion.samplers import SAMPLERS, initial_noise
from models.diffusion.schedule import Schedule, make_schedule, schedule_kwargs
from models.diffusion.store import load_diffusion

COLUMNS = [
    "stimulus_id", "path", "sha256", "source", "model", "class_label", "class_text", "exemplar_id",
    "guidance", "sampler", "steps", "seed", "checkpoint", "dataset", "split", "role", "width", "height",
]
POSTPROCESS = ("binarise", "none")
SPLITS = ("auto", "heldout", "train")
UNCONDITIONAL = "unconditional"
SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class SampleError(ValueError):
    """Bad sampling arguments (the message names the option)."""


def safe_name(text: str) -> str:
    """A file-name-safe form of an id (`digits/digit3/0012` -> `digits-digit3-0012`)."""
    return SAFE.sub("_", text.replace("/", "-"))


def sample_seed(base_seed: int, key: str) -> int:
    """A sample's seed from the run's seed and a stable key (same key -> same initial noise, so
    guidance scales are compared on the same noise)."""
    return (base_seed * 1_000_003 + zlib.crc32(key.encode())) % (2**31 - 1)


def schedule_of(cfg: Config) -> Schedule:
    return make_schedule(**schedule_kwargs(cfg.diffusion))


@torch.no_grad()
def generate(
    net: nn.Module,
    schedule: Schedule,
    context: torch.Tensor | None,
    seeds: Sequence[int],
    w: float = 0.0,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    device: torch.device | str | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Samples (B, 1, S, S) in [-1, 1], one per seed; each sample's noise comes from its own CPU
    generator seeded with its seed, so a sample does not depend on its batch. `context` is on any
    device (moved to the net's)."""
    dev = pick_device(device) if device is not None else next(net.parameters()).device
    size = net.image_size
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    x_T = initial_noise((len(seeds), 1, size, size), gens, dev)
    ctx = None if context is None else context.to(dev)
    if sampler not in SAMPLERS:
        raise SampleError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    steps = schedule.T if sampler == "ddpm" else steps
    return SAMPLERS[sampler](net, x_T, schedule, ctx, steps=steps, w=w, eta=eta, generator=gens, callback=callback)


def exemplar_context(mode: str, dataset: ImageDataset, exemplar_ids: Sequence[str], set_size: int = 1,
                     class_index: Sequence[int] | None = None) -> torch.Tensor | None:
    """The context of one sample per entry: for "exemplar" the exemplar image (B, 1, H, W); for
    "set" the exemplar plus the next set_size - 1 images of its class in sorted id order
    (B, K, 1, H, W); for "class" the class indices; None for "none"."""
    if mode == "none":
        return None
    if mode == "class":
        return torch.as_tensor(list(class_index or []), dtype=torch.long)
    pos = {i: k for k, i in enumerate(dataset.ids)}
    imgs = []
    for eid in exemplar_ids:
        k = pos[eid]
        if mode == "exemplar":
            imgs.append(dataset.images[k])
            continue
        same = sorted(dataset.ids[j] for j in dataset.indices_of_class(int(dataset.labels[k])))
        chosen = [eid] + [i for i in same if i != eid][: set_size - 1]
        if len(chosen) < set_size:
            raise SampleError(f"--set-size: class of {eid} has only {len(chosen)} images")
        imgs.append(torch.stack([dataset.images[pos[i]] for i in chosen]))
    return torch.stack(imgs)


@dataclass
class Job:
    """One stimulus to make: a model sample or a real image."""

    stimulus_id: str
    source: str
    class_label: str
    split: str
    image_id: str = ""  # real: the data set id; model: the exemplar id
    model: str = ""
    checkpoint: str = ""
    guidance: float | None = None
    seed: int | None = None
    class_index: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Loaded:
    path: str
    net: nn.Module
    cfg: Config
    meta: dict[str, Any]
    data: ImageDataset  # the split part the stimuli come from
    split: str


def _load(path: str, device: torch.device, use_split: str, dataset_root: str | None) -> Loaded:
    net, cfg, meta = load_diffusion(path, device)
    d = cfg.data
    root = dataset_root or d.root
    data = load_dataset(d.dataset, root, d.size, threshold=d.threshold, max_per_class=d.max_per_class)
    if data.content_hash() != meta.get("dataset_hash"):
        raise SampleError(
            f"checkpoint: {path} was trained on other data than {d.dataset} at {root!r} gives now "
            "(data set hash differs); pass --data-root to the data it was trained on"
        )
    train, heldout = apply_split(data, meta["split"])
    if cfg.model.context == "class":
        split = "train"
    elif use_split == "auto":
        split = "heldout" if len(heldout) else "train"
    else:
        split = use_split
    part = heldout if split == "heldout" else train
    if len(part) == 0:
        raise SampleError(f"--split: the {split} part of {path}'s data is empty")
    return Loaded(path, net, cfg, meta, part, split)


def plan_jobs(
    models: Sequence[Loaded],
    n_per_class: int,
    guidance: Sequence[float] | None,
    real_per_class: int,
    seed: int,
    max_classes: int | None = None,
) -> tuple[list[Job], list[str]]:
    """Every stimulus of the run (all shards) in stimulus-id order, and notes on skipped work.
    Models trained without context dropout get w = 0 only (no unconditional prediction exists)."""
    jobs: list[Job] = []
    notes: list[str] = []
    for m in models:
        classes = m.data.class_names if max_classes is None else m.data.class_names[:max_classes]
        if m.cfg.model.context == "none":
            classes = [UNCONDITIONAL]  # n_per_class unconditional samples in all
        exemplars = m.meta["split"]["exemplars"]
        scales = list(guidance) if guidance is not None else list(m.cfg.sampling.guidance)
        if m.cfg.training.p_uncond == 0.0 and any(w != 0 for w in scales):
            notes.append(f"{m.cfg.name}: trained without context dropout, guidance > 0 skipped")
            scales = [w for w in scales if w == 0] or []
        for w in scales:
            for ci, cls in enumerate(classes):
                for j in range(n_per_class):
                    key = f"{m.cfg.name}-c{ci:03d}-e0-s{j}"
                    exemplar = exemplars[cls] if m.cfg.model.context in ("exemplar", "set") else ""
                    jobs.append(Job(
                        stimulus_id=f"{m.cfg.name}-w{float(w)}-c{ci:03d}-e0-s{j}",
                        source="model", class_label=cls, split=m.split, image_id=exemplar,
                        model=m.cfg.name, checkpoint=m.path, guidance=float(w),
                        seed=sample_seed(seed, key),
                        class_index=m.data.class_names.index(cls) if cls in m.data.class_names else 0,
                    ))
    if real_per_class and models:
        m = models[0]
        classes = m.data.class_names if max_classes is None else m.data.class_names[:max_classes]
        exemplars = set(m.meta["split"]["exemplars"].values())
        rng = np.random.default_rng(seed)
        for label, cls in enumerate(m.data.class_names):
            if cls not in classes:
                continue
            ids = sorted(m.data.ids[k] for k in m.data.indices_of_class(label) if m.data.ids[k] not in exemplars)
            for image_id in [ids[k] for k in sorted(rng.permutation(len(ids))[:real_per_class])]:
                jobs.append(Job(stimulus_id=f"real-{safe_name(image_id)}", source="real",
                                class_label=cls, split=m.split, image_id=image_id))
    ids = [j.stimulus_id for j in jobs]
    if len(set(ids)) != len(ids):
        raise SampleError("checkpoints: two checkpoints share a model name; stimulus ids would collide")
    return sorted(jobs, key=lambda j: j.stimulus_id), notes


def _write_png(arr: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(path, format="PNG")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _row(job: Job, rel: str, digest: str, size: int, dataset: str, sampler: str, steps: int | None) -> dict:
    model = job.source == "model"
    return {
        "stimulus_id": job.stimulus_id, "path": rel, "sha256": digest, "source": job.source,
        "model": job.model if model else "", "class_label": job.class_label,
        # what a participant is told the image shows; an unconditional sample has no class
        "class_text": "" if job.class_label == UNCONDITIONAL else class_text(dataset, job.class_label),
        "exemplar_id": job.image_id if model else "",
        "guidance": job.guidance if model else None, "sampler": sampler if model else "",
        "steps": steps if model else None, "seed": job.seed if model else None,
        "checkpoint": job.checkpoint if model else "", "dataset": dataset, "split": job.split,
        "role": "main", "width": size, "height": size,
    }


@dataclass(frozen=True)
class SamplingOptions:
    """What to sample and how, checked when made (a SampleError naming the command-line option).

    guidance/sampler/steps/eta left None come from each checkpoint's [sampling] config.
    postprocess "binarise" thresholds samples at 0 like the (binarised) real images, so that a
    real/fake judgment cannot rest on grey levels alone; "none" keeps the grey levels.
    `shard=(i, n)` makes every n-th stimulus from the i-th; `use_split` picks the data part the
    classes come from ("auto": held-out when there is one)."""

    n_per_class: int
    guidance: tuple[float, ...] | None = None
    sampler: str | None = None
    steps: int | None = None
    eta: float | None = None
    real_per_class: int = 0
    seed: int = 0
    shard: tuple[int, int] = (0, 1)
    batch_size: int = 256
    max_classes: int | None = None
    set_size: int = 1
    use_split: str = "auto"
    dataset_root: str | None = None
    postprocess: str = "binarise"

    def __post_init__(self) -> None:
        if self.guidance is not None:
            object.__setattr__(self, "guidance", tuple(self.guidance))
        if self.batch_size < 1:
            raise SampleError("--batch-size: must be >= 1")
        if self.set_size < 1:
            raise SampleError("--set-size: must be >= 1")
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            raise SampleError(f"--shard: need 0 <= i < n, got {i}/{n}")
        if self.n_per_class < 0:
            raise SampleError(f"--n-per-class: must be >= 0, got {self.n_per_class}")
        if self.real_per_class < 0:
            raise SampleError(f"--real: must be >= 0, got {self.real_per_class}")
        if self.postprocess not in POSTPROCESS:
            raise SampleError(f"--postprocess: must be one of {POSTPROCESS}, got {self.postprocess!r}")
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise SampleError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.guidance is not None and (not self.guidance or any(w < 0 for w in self.guidance)):
            raise SampleError("--guidance: need one or more scales >= 0")
        if self.eta is not None and self.eta < 0:
            raise SampleError("--eta: must be >= 0")
        if self.use_split not in SPLITS:
            raise SampleError(f"--split: must be one of {', '.join(SPLITS)}, got {self.use_split!r}")
        if self.steps is not None and self.steps < 1:
            raise SampleError(f"--steps: must be >= 1, got {self.steps}")
        if self.max_classes is not None and self.max_classes < 1:
            raise SampleError(f"--max-classes: must be >= 1, got {self.max_classes}")


@dataclass(frozen=True)
class SamplerPlan:
    """How one checkpoint is sampled: sampler name (a key of SAMPLERS), network evaluations, eta."""

    sampler: str
    steps: int
    eta: float


def load_models(checkpoints: Sequence[str], device: torch.device, use_split: str,
                dataset_root: str | None) -> list[Loaded]:
    """Every checkpoint with the data part its stimuli come from. All must share one data split
    and image size: real drawings and exemplars are taken from the first."""
    models = [_load(str(p), device, use_split, dataset_root) for p in checkpoints]
    first = models[0]
    for m in models[1:]:
        if m.meta["split"] != first.meta["split"] or m.cfg.data.size != first.cfg.data.size:
            raise SampleError(f"checkpoints: {m.path} uses another data split or size than {first.path}")
    return models


def sampler_plan(m: Loaded, options: SamplingOptions) -> SamplerPlan:
    """The checkpoint's sampler, steps and eta: the options' where given, else its [sampling]
    config. DDPM always runs all T steps, so T is what the manifest records for it."""
    sc = m.cfg.sampling
    sampler = options.sampler or sc.sampler
    steps = sc.steps if options.steps is None else options.steps
    T = m.cfg.diffusion.T
    if sampler != "ddpm" and not 1 <= steps <= T:
        raise SampleError(f"--steps: must be in 1..{T} for {m.path}")
    return SamplerPlan(sampler, T if sampler == "ddpm" else steps, sc.eta if options.eta is None else options.eta)


def shard_jobs(jobs: Sequence[Job], shard: tuple[int, int]) -> list[Job]:
    """Shard i of n: every n-th job from the i-th, so the shards together make each job once."""
    i, n = shard
    return list(jobs[i::n])


def model_batches(jobs: Sequence[Job], batch_size: int) -> list[list[Job]]:
    """The model jobs as network calls: grouped by (checkpoint, guidance) in job order, each group
    cut into batches of at most batch_size. Real-image jobs are left out."""
    groups: dict[tuple[str, float | None], list[Job]] = {}
    for j in jobs:
        if j.source == "model":
            groups.setdefault((j.checkpoint, j.guidance), []).append(j)
    return [group[b : b + batch_size] for group in groups.values() for b in range(0, len(group), batch_size)]


def binarise(x: torch.Tensor) -> torch.Tensor:
    """Samples in [-1, 1] thresholded at 0 to -1/+1, like the binarised real drawings."""
    return torch.where(x >= 0, 1.0, -1.0)


def sample_batch(m: Loaded, schedule: Schedule, plan: SamplerPlan, batch: Sequence[Job], set_size: int,
                 postprocess: str, device: torch.device) -> torch.Tensor:
    """One network call's samples, (B, 1, S, S) in [-1, 1]: one checkpoint at one guidance scale
    (the batch's), each job's context and seed; binarised when postprocess is "binarise"."""
    ctx = exemplar_context(m.cfg.model.context, m.data, [j.image_id for j in batch], set_size,
                           [j.class_index for j in batch])
    x = generate(m.net, schedule, ctx, [j.seed for j in batch], batch[0].guidance, plan.sampler, plan.steps,
                 plan.eta, device)
    return binarise(x) if postprocess == "binarise" else x


def write_stimulus(job: Job, image: torch.Tensor, out: Path, size: int, dataset: str, sampler: str,
                   steps: int | None) -> dict:
    """Write one stimulus (1, S, S) in [-1, 1] as out/images/{stimulus_id}.png; its manifest row."""
    rel = f"images/{job.stimulus_id}.png"
    digest = _write_png(tensor_to_png_array(image), out / rel)
    return _row(job, rel, digest, size, dataset, sampler, steps)


def write_real_images(jobs: Sequence[Job], data: ImageDataset, out: Path, size: int,
                      advance: Callable[[int], object] = lambda n: None) -> list[dict]:
    """Copy the real-image jobs' drawings from `data` into out/images; their manifest rows."""
    rows = []
    for j in (j for j in jobs if j.source == "real"):
        rows.append(write_stimulus(j, data.images[data.ids.index(j.image_id)], out, size, data.name, "", None))
        advance(1)
    return rows


def write_model_samples(jobs: Sequence[Job], models: Sequence[Loaded], plans: dict[str, SamplerPlan],
                        options: SamplingOptions, device: torch.device, out: Path, size: int,
                        advance: Callable[[int], object] = lambda n: None) -> list[dict]:
    """Sample the model jobs batch by batch into out/images; their manifest rows."""
    by_path = {m.path: m for m in models}
    schedules = {m.path: schedule_of(m.cfg) for m in models}
    rows = []
    for batch in model_batches(jobs, options.batch_size):
        m, plan = by_path[batch[0].checkpoint], plans[batch[0].checkpoint]
        x = sample_batch(m, schedules[m.path], plan, batch, options.set_size, options.postprocess, device)
        rows += [write_stimulus(job, img, out, size, m.data.name, plan.sampler, plan.steps)
                 for job, img in zip(batch, x, strict=True)]
        advance(len(batch))
    return rows


def write_exemplars(jobs: Sequence[Job], data: ImageDataset, out: Path) -> list[dict]:
    """Write the exemplars the model jobs were conditioned on as out/exemplars/*.png, in id
    order; the manifest's exemplar entries."""
    exemplars = []
    for eid in sorted({j.image_id for j in jobs if j.source == "model" and j.image_id}):
        rel = f"exemplars/{safe_name(eid)}.png"
        pos = data.ids.index(eid)
        digest = _write_png(tensor_to_png_array(data.images[pos]), out / rel)
        exemplars.append({"exemplar_id": eid, "path": rel, "sha256": digest,
                          "class_label": data.class_names[int(data.labels[pos])]})
    return exemplars


def generator_record(models: Sequence[Loaded], plans: dict[str, SamplerPlan], options: SamplingOptions,
                     device: torch.device, notes: list[str], n_total: int) -> dict:
    """The manifest's `generator` entry: every checkpoint with its sampler plan, the options as
    given (None where a checkpoint's config decided), this shard and the run's size."""
    guidance = list(options.guidance) if options.guidance is not None else None
    i, n = options.shard
    return {
        "command": "python -m models sample",
        "checkpoints": [
            {"path": m.path, "model": m.cfg.name, "context": m.cfg.model.context,
             "p_uncond": m.cfg.training.p_uncond, "dataset_hash": m.meta.get("dataset_hash"),
             "code_version": m.meta.get("code_version"), "T": m.cfg.diffusion.T,
             **asdict(plans[m.path]),
             "guidance": guidance if guidance is not None else list(m.cfg.sampling.guidance)}
            for m in models
        ],
        "sampler": options.sampler, "steps": options.steps, "eta": options.eta, "guidance": guidance,
        "n_per_class": options.n_per_class, "real_per_class": options.real_per_class, "seed": options.seed,
        "set_size": options.set_size, "postprocess": options.postprocess, "shard": f"{i}/{n}",
        "device": str(device), "notes": notes,
        "ink": "black on white PNG; models.data.preprocess.load_stimulus reads it back to [-1, 1]",
        "n_total": n_total,
    }


def manifest_stem(shard: tuple[int, int]) -> str:
    """`manifest` for an unsharded run, `manifest.shard{i}of{n}` for shard i of n > 1."""
    i, n = shard
    return "manifest" if n == 1 else f"manifest.shard{i}of{n}"


def run_sampling(checkpoints: Sequence[str], out_dir: Path | str, options: SamplingOptions,
                 device: str | torch.device | None = None, progress: bool = True) -> Path:
    """Make this shard's stimuli under out_dir/images, exemplars under out_dir/exemplars, and write
    manifest.{csv,json} (or manifest.shard{i}of{n}.{csv,json} for n > 1). Returns the JSON path."""
    if not checkpoints:
        raise SampleError("checkpoint: give at least one checkpoint")
    dev = pick_device(device)
    models = load_models(checkpoints, dev, options.use_split, options.dataset_root)
    plans = {m.path: sampler_plan(m, options) for m in models}
    jobs, notes = plan_jobs(models, options.n_per_class, options.guidance, options.real_per_class, options.seed,
                            options.max_classes)
    mine = shard_jobs(jobs, options.shard)
    out, first = Path(out_dir), models[0]
    size = first.cfg.data.size
    with tqdm(total=len(mine), desc="sample", disable=not progress, dynamic_ncols=True) as bar:
        rows = write_real_images(mine, first.data, out, size, bar.update)
        rows += write_model_samples(mine, models, plans, options, dev, out, size, bar.update)
    exemplars = write_exemplars(mine, first.data, out)
    generator = generator_record(models, plans, options, dev, notes, len(jobs))
    return write_manifest(out, rows, generator, exemplars, manifest_stem(options.shard))


def write_manifest(out_dir: Path, rows: list[dict], generator: dict, exemplars: list[dict],
                   stem: str = "manifest") -> Path:
    """Write `{stem}.csv` and `{stem}.json` (rows sorted by stimulus_id); returns the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: r["stimulus_id"])
    with (out_dir / f"{stem}.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if r[k] is None else r[k] for k in COLUMNS})
    doc = {
        "version": 1,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "generator": generator,
        "exemplars": exemplars,
        "stimuli": rows,
    }
    path = out_dir / f"{stem}.json"
    path.write_text(json.dumps(doc, indent=1))
    return path


def merge_manifests(out_dir: Path | str) -> Path:
    """Merge `manifest.shard*of*.json` in out_dir into manifest.{csv,json}, by stimulus id.
    All shards of the run must be present and agree on any id they share."""
    out = Path(out_dir)
    parts = sorted(out.glob("manifest.shard*of*.json"))
    if not parts:
        raise SampleError(f"merge: no manifest.shard*of*.json files in {str(out)!r}")
    docs = [json.loads(p.read_text()) for p in parts]
    n_shards = {d["generator"]["shard"].split("/")[1] for d in docs}
    shards = {d["generator"]["shard"] for d in docs}
    if len(n_shards) != 1 or len(shards) != int(next(iter(n_shards))):
        raise SampleError(f"merge: shards {sorted(shards)} do not make one complete run")
    rows: dict[str, dict] = {}
    for d in docs:
        for r in d["stimuli"]:
            if r["stimulus_id"] in rows and rows[r["stimulus_id"]] != r:
                raise SampleError(f"merge: stimulus {r['stimulus_id']} differs between shards")
            rows[r["stimulus_id"]] = r
    total = docs[0]["generator"]["n_total"]
    if len(rows) != total:
        raise SampleError(f"merge: {len(rows)} stimuli found, the run has {total}")
    exemplars = {e["exemplar_id"]: e for d in docs for e in d.get("exemplars", [])}
    generator = {**docs[0]["generator"], "shard": f"merged from {len(docs)} shards"}
    return write_manifest(out, list(rows.values()), generator, [exemplars[k] for k in sorted(exemplars)])
