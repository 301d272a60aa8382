"""The stages every pipeline shares, each cached under `cache/` by the hash of its inputs:
diffusion models (models.diffusion.training.train), stimuli (models.sample.run_sampling), the
one-shot critic and the SimCLR encoder (models.classifiers), and the stimuli read back as tensors.

A cached result is reused only when it is complete (a checkpoint trained to its last step, a
written manifest), so an interrupted run resumes instead of reusing half a model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch

from experiments.profiles import Profile
from models.attribution.manifest import load_images, manifest_file, read_manifest
from models.checkpoint import read_checkpoint
from models.classifiers.protonet import CriticRecipe, ProtoNet, train_critic
from models.classifiers.simclr import SimCLREncoder, train_simclr
from models.classifiers.store import load_classifier, save_classifier
from models.config import Config
from models.data import ImageDataset
from models.diffusion.training import CHECKPOINT_NAME, load_training_data, train
from models.sample import COLUMNS as MANIFEST_COLUMNS
from models.sample import SamplingOptions, run_sampling


def digest(obj: Any, n: int = 12) -> str:
    """Short sha256 of a JSON-serialisable object (the cache key)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def _trained_steps(path: Path) -> int:
    try:
        return int(read_checkpoint(path)["meta"].get("metrics", {}).get("steps") or 0)
    except (ValueError, KeyError, TypeError):
        return -1


def _train_in_worker(cfg_dict: dict[str, Any], folder: str, resume: bool) -> dict[str, Any]:
    """One model in a worker process with one torch thread (two such processes on two cores train
    faster than one process with two threads: BENCHMARKS.md, section threads)."""
    from models.config import config_from_dict

    torch.set_num_threads(1)
    return train(config_from_dict(cfg_dict), folder, device="cpu", resume=resume, progress=False).metrics


def train_models(profile: Profile, cache: Path, device: torch.device, log: logging.Logger,
                 progress: bool = True) -> dict[str, Path]:
    """Train (or reuse) every diffusion model of the profile; returns {model name: checkpoint}.
    On a CPU with several cores the models train at once, one process and one thread each."""
    out, todo = {}, []
    for cfg in profile.models:
        folder = cache / "diffusion" / f"{cfg.name}-{digest(cfg.to_dict())}"
        ckpt = folder / CHECKPOINT_NAME
        steps = _trained_steps(ckpt) if ckpt.exists() else 0
        if steps == cfg.training.steps:
            log.info("model %s: reusing %s", cfg.name, ckpt)
        else:
            if steps < 0:
                log.info("model %s: %s is unreadable, training afresh", cfg.name, ckpt)
                ckpt.unlink()
            log.info("model %s: training %d steps (%s)%s", cfg.name, cfg.training.steps, device,
                     f", resuming at step {steps}" if steps > 0 else "")
            todo.append((cfg, folder, steps > 0))
        out[cfg.name] = ckpt
    workers = min(len(todo), os.cpu_count() or 1)
    if device.type == "cpu" and workers > 1:
        log.info("training %d models in %d processes of one thread each", len(todo), workers)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            runs = [pool.submit(_train_in_worker, cfg.to_dict(), str(folder), resume) for cfg, folder, resume in todo]
            results = [(cfg, run.result()) for (cfg, _f, _r), run in zip(todo, runs, strict=True)]
    else:
        results = [(cfg, train(cfg, folder, device=device, resume=resume, progress=progress).metrics)
                   for cfg, folder, resume in todo]
    for cfg, metrics in results:
        log.info("model %s: loss %.4f -> %.4f, %.0f images/s", cfg.name, metrics["loss_first"],
                 metrics["loss_last"], metrics["images_per_s"] or 0)
    return out


def make_stimuli(profile: Profile, checkpoints: dict[str, Path], cache: Path, seed: int,
                 device: torch.device, log: logging.Logger, progress: bool = True) -> Path:
    """Sample every model for the held-out exemplars at the profile's guidance scales, plus real
    held-out drawings; returns the manifest.json path (models.sample writes it)."""
    s = profile.section("sampling")
    # The manifest's columns are part of the key: a manifest cached before a column existed is
    # made again rather than handed to readers that need the column.
    key = digest({"models": {n: digest(read_checkpoint(p)["config"]) for n, p in checkpoints.items()},
                  "sampling": s, "seed": seed, "columns": MANIFEST_COLUMNS})
    folder = cache / "stimuli" / key
    manifest = folder / "manifest.json"
    if manifest.exists():
        log.info("stimuli: reusing %s", manifest)
        return manifest
    log.info("stimuli: sampling %s at guidance %s (%s %d steps)", ", ".join(checkpoints),
             s["guidance"], s["sampler"], s["steps"])
    options = SamplingOptions(
        n_per_class=s["n_per_class"], guidance=tuple(float(g) for g in s["guidance"]), sampler=s["sampler"],
        steps=s["steps"], real_per_class=s["real_per_class"], seed=seed, batch_size=s["batch_size"],
        max_classes=s["max_classes"], postprocess=s["postprocess"],
    )
    return run_sampling([str(p) for p in checkpoints.values()], folder, options, device=device, progress=progress)


@dataclass
class Stimuli:
    """A manifest read back: `table` one row per stimulus (manifest columns), `images` (N, 1, H, W)
    in [-1, 1] aligned with it, `exemplars` {exemplar_id: (1, H, W)}."""

    manifest: Path
    table: pd.DataFrame
    images: torch.Tensor
    exemplars: dict[str, torch.Tensor]

    def rows(self, mask: pd.Series) -> tuple[pd.DataFrame, torch.Tensor]:
        idx = mask.to_numpy().nonzero()[0]
        return self.table.iloc[idx].reset_index(drop=True), self.images[torch.as_tensor(idx)]


PIPELINE_COLUMNS = ("model", "guidance", "width")  # beyond the manifest's required columns


def read_stimuli(manifest: Path) -> Stimuli:
    """A stimulus manifest (docs/formats.md section 1, JSON or CSV) read with the project's one
    reader (models.attribution.manifest: required columns, unique ids) and its image loader.
    A missing column or image is a ValueError / FileNotFoundError naming it."""
    path = manifest_file(manifest)
    rows = read_manifest(path)
    missing = [c for c in PIPELINE_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"manifest: column(s) {', '.join(missing)} missing from {path.name}")
    table = pd.DataFrame(rows)
    table["guidance"] = pd.to_numeric(table["guidance"], errors="coerce")  # empty for real drawings
    images = load_images(path.parent, rows)
    exemplars: dict[str, torch.Tensor] = {}
    if path.suffix == ".json":  # the JSON manifest also lists the conditioning exemplars
        listed = [{"stimulus_id": e["exemplar_id"], "path": e["path"]}
                  for e in json.loads(path.read_text()).get("exemplars", [])
                  if isinstance(e, dict) and "exemplar_id" in e and "path" in e]
        if listed:
            exemplars = dict(zip([e["stimulus_id"] for e in listed], load_images(path.parent, listed), strict=True))
    return Stimuli(path, table, images, exemplars)


def split_data(cfg: Config) -> tuple[ImageDataset, ImageDataset, dict[str, Any]]:
    """The (train, held-out, split record) the diffusion models were trained on."""
    return load_training_data(cfg)


class SharedInputs(NamedTuple):
    """What every pipeline starts from: the trained models, the stimuli (manifest and tensors)
    and the data split the models were trained on."""

    checkpoints: dict[str, Path]
    manifest: Path
    stimuli: Stimuli
    train_set: ImageDataset
    heldout: ImageDataset
    split: dict[str, Any]


def shared_inputs(profile: Profile, cache: Path, seed: int, device: torch.device, log: logging.Logger,
                  progress: bool = True) -> SharedInputs:
    """Train (or reuse) the profile's models, sample (or reuse) the stimuli, read them back, and
    load the split: the stages the artist, facade and study pipelines share."""
    checkpoints = train_models(profile, cache, device, log, progress)
    manifest = make_stimuli(profile, checkpoints, cache, seed, device, log, progress)
    train_set, heldout, split = split_data(profile.models[0])
    return SharedInputs(checkpoints, manifest, read_stimuli(manifest), train_set, heldout, split)


@dataclass
class Critics:
    protonet: ProtoNet
    simclr: SimCLREncoder


def train_critics(profile: Profile, train_set: ImageDataset, cache: Path, seed: int,
                  device: torch.device, log: logging.Logger) -> Critics:
    """The one-shot critic (ProtoNet) and the SimCLR encoder, trained on the training classes
    only (the held-out classes stay unseen, as in Boutin et al.); cached."""
    c = profile.section("critics")
    key = digest({"data": train_set.content_hash(), "critics": c, "seed": seed})
    folder = cache / "critics" / key
    proto_path, simclr_path = folder / "protonet.pt", folder / "simclr.pt"
    if proto_path.exists() and simclr_path.exists():
        log.info("critics: reusing %s", folder)
        return Critics(load_classifier(proto_path, device)[0], load_classifier(simclr_path, device)[0])
    log.info("critics: ProtoNet %d episodes (%d-way), SimCLR %d epochs on %d training images",
             c["protonet_episodes"], c["protonet_way"], c["simclr_epochs"], len(train_set))
    recipe = CriticRecipe(episodes=c["protonet_episodes"], n_way=c["protonet_way"], n_query=c["protonet_query"],
                          rotations=c.get("protonet_rotations", False), affine=c.get("protonet_affine", False),
                          within_alphabet=c.get("protonet_within_alphabet", 0.0),
                          test_shift=c.get("protonet_test_shift", 0))
    proto = train_critic(train_set.images, train_set.labels, recipe, class_names=train_set.class_names,
                         device=device, seed=seed)
    simclr = train_simclr(train_set.images, epochs=c["simclr_epochs"], device=device, seed=seed)
    meta = {"train_hash": train_set.content_hash(), "seed": seed}
    save_classifier(proto_path, proto, {"kind": "protonet", "size": train_set.size, **c}, meta)
    save_classifier(simclr_path, simclr, {"kind": "simclr", "size": train_set.size, **c}, meta)
    return Critics(proto, simclr)


def train_feedback(profile: Profile, heldout: ImageDataset, cache: Path, seed: int,
                   device: torch.device, log: logging.Logger) -> Path:
    """The ClickMe game's feedback classifier over the held-out classes (the classes the
    ClickMe stimuli show), trained on revealed-bubble views of their drawings; cached."""
    from models.classifiers.feedback import FeedbackClassifier

    epochs = int(profile.section("study")["feedback_epochs"])
    key = digest({"data": heldout.content_hash(), "epochs": epochs, "seed": seed})
    path = cache / "feedback" / key / "feedback.pt"
    if path.exists():
        log.info("feedback classifier: reusing %s", path)
        return path
    log.info("feedback classifier: %d epochs on %d held-out drawings of %d classes", epochs,
             len(heldout), len(heldout.class_names))
    clf = FeedbackClassifier.train(heldout.images, heldout.labels, heldout.class_names, epochs=epochs,
                                   device=device, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    return clf.save(path, {"train_hash": heldout.content_hash(), "seed": seed})
