"""The `facade` pipeline (Seeing Through the Facade, 2023): real-vs-fake classifiers (the small
CNN and ResNet-18, trained from scratch) on each model's samples against held-out human
drawings, with the training-data-fraction sweep; their saliency maps (Captum Saliency and
Grad-CAM); and which models, classes and guidance scales fool them most."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from experiments import figures, stages
from experiments.rundir import RunDir, markdown, md_table
from models.attribution.methods import gradcam, saliency
from models.classifiers.realfake import fraction_sweep, stratified_split, train_realfake
from models.classifiers.training import predict_logits

ARCH_LABEL = {"lenet": "CNN", "resnet18": "ResNet-18"}


def real_pool(heldout, classes: list[str], exemplar_ids: set[str]) -> torch.Tensor:
    """Held-out human drawings of `classes`, exemplars excluded: (N, 1, H, W)."""
    keep = [k for k, i in enumerate(heldout.ids)
            if heldout.class_names[int(heldout.labels[k])] in classes and i not in exemplar_ids]
    return heldout.images[keep]


def _epochs(f: dict, arch: str) -> int:
    return int(f["resnet_epochs"] if arch == "resnet18" else f["epochs"])


def subsample(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`idx` itself when it has at most n entries, else a seeded subset of n in ascending order."""
    return np.sort(rng.choice(idx, n, replace=False)) if len(idx) > n else idx


def matched_reals(reals: torch.Tensor, n: int, rng: np.random.Generator) -> torch.Tensor:
    """A seeded subset of the real drawings as large as n fakes (all of them when fewer), in order."""
    return reals[torch.as_tensor(np.sort(rng.choice(len(reals), min(len(reals), n), replace=False)))]


def sweep_table(fakes_table: pd.DataFrame, fakes: torch.Tensor, reals: torch.Tensor, f: dict,
                rng: np.random.Generator, device: torch.device, seed: int, log: logging.Logger) -> pd.DataFrame:
    """The data-fraction sweep: per model (at most max_per_model samples, as many reals) and per
    sweep architecture, test accuracy at each training fraction; one row per point."""
    rows = []
    for model in sorted(fakes_table["model"].unique()):
        # a seeded subset; samples are ordered by guidance
        idx = subsample((fakes_table["model"] == model).to_numpy().nonzero()[0], f["max_per_model"], rng)
        fake = fakes[torch.as_tensor(idx)]
        real = matched_reals(reals, len(fake), rng)
        for arch in f["sweep_archs"]:
            log.info("sweep: %s vs real, %s, fractions %s", model, arch, f["fractions"])
            for p in fraction_sweep(real, fake, fractions=f["fractions"], arch=arch,
                                    test_fraction=f["test_fraction"], epochs=_epochs(f, arch),
                                    device=device, seed=seed):
                rows.append({"model": model, "arch": arch, **p.as_dict()})
    return pd.DataFrame(rows)


@dataclass
class Pool:
    """All models' samples (at most max_pooled) after as many real drawings: `images` (N, 1, H, W),
    `labels` (N,) 0 = real, 1 = fake, `meta` one row per image (model, guidance, class_label,
    stimulus_id; empty for reals)."""

    images: torch.Tensor
    labels: torch.Tensor
    meta: pd.DataFrame
    n_real: int
    n_fake: int


def pooled_set(fakes_table: pd.DataFrame, fakes: torch.Tensor, reals: torch.Tensor, max_pooled: int,
               rng: np.random.Generator) -> Pool:
    """The pooled real-vs-fake set the per-architecture classifiers are trained and tested on."""
    keep = subsample(np.arange(len(fakes)), max_pooled, rng)
    fakes_table, fakes = fakes_table.iloc[keep].reset_index(drop=True), fakes[torch.as_tensor(keep)]
    real = matched_reals(reals, len(fakes), rng)
    labels = torch.cat([torch.zeros(len(real), dtype=torch.long), torch.ones(len(fakes), dtype=torch.long)])
    meta = pd.concat([pd.DataFrame({"model": [""] * len(real), "guidance": np.nan, "class_label": ""}),
                      fakes_table[["model", "guidance", "class_label", "stimulus_id"]]], ignore_index=True)
    return Pool(torch.cat([real, fakes]), labels, meta, len(real), len(fakes))


def predict_test_part(net: torch.nn.Module, pool: Pool, test_idx: torch.Tensor, arch: str,
                     device: torch.device) -> pd.DataFrame:
    """One classifier on the pool's test part: its meta rows with classifier, p_fake, said_fake
    (p_fake > 0.5) and is_fake."""
    p_fake = predict_logits(net, pool.images[test_idx], device=device).softmax(1)[:, 1].numpy()
    m = pool.meta.iloc[test_idx.numpy()].reset_index(drop=True)
    m["classifier"], m["p_fake"], m["said_fake"], m["is_fake"] = (
        ARCH_LABEL[arch], p_fake, p_fake > 0.5, pool.labels[test_idx].numpy() == 1)
    return m


def classify_pool(pool: Pool, train_idx: torch.Tensor, test_idx: torch.Tensor, f: dict, device: torch.device,
                  seed: int, log: logging.Logger) -> tuple[dict[str, torch.nn.Module], pd.DataFrame, dict[str, float]]:
    """One classifier per architecture trained on the pool's training part: the nets, the test
    predictions of all of them (predict_test_part rows) and each one's test accuracy."""
    nets, preds, accuracy = {}, [], {}
    for arch in f["archs"]:
        log.info("all models vs real: %s on %d images", arch, len(train_idx))
        nets[arch] = _train_on(pool.images[train_idx], pool.labels[train_idx], arch, _epochs(f, arch),
                               f["batch_size"], device, seed)
        m = predict_test_part(nets[arch], pool, test_idx, arch, device)
        accuracy[ARCH_LABEL[arch]] = float((m["said_fake"] == m["is_fake"]).mean())
        preds.append(m)
    return nets, pd.concat(preds, ignore_index=True), accuracy


def fooling_tables(pred: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """From test predictions: the share of fakes judged real per classifier and model at its
    guidance (`model_w`), the same per class, and each classifier's rate of reals called fake."""
    fakes = pred.loc[pred["is_fake"]].assign(fooled=lambda d: (~d["said_fake"]).astype(float))
    by_model = (fakes.assign(model_w=fakes["model"] + " w=" + fakes["guidance"].map("{:g}".format))
                .groupby(["classifier", "model_w"]).agg(fooled_rate=("fooled", "mean"), n=("fooled", "size"))
                .reset_index())
    by_class = (fakes.groupby(["classifier", "class_label"])
                .agg(fooled_rate=("fooled", "mean"), n=("fooled", "size")).reset_index())
    real_err = pred.loc[~pred["is_fake"]].groupby("classifier")["said_fake"].mean()
    return by_model, by_class, real_err


def most_fooling(table: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """Each classifier's n rows with the highest fooled_rate."""
    return table.sort_values("fooled_rate", ascending=False).groupby("classifier").head(n)


def saliency_picks(labels: torch.Tensor, test_idx: torch.Tensor, k: int) -> torch.Tensor:
    """k test images to show saliency on: the first ceil(k/2) reals, then the first floor(k/2) fakes."""
    test_labels = labels[test_idx]
    return torch.cat([test_idx[test_labels == 0][:k // 2 + k % 2], test_idx[test_labels == 1][: k // 2]])


def save_saliency(run: RunDir, nets: dict[str, torch.nn.Module], pool: Pool, test_idx: torch.Tensor, k: int,
                  device: torch.device) -> None:
    """Per classifier: a figure of Saliency and Grad-CAM for the 'fake' logit on k test images,
    and the mean Saliency map over the test fakes and over the test reals (.npy)."""
    pick = saliency_picks(pool.labels, test_idx, k)
    meta = pool.meta
    pick_labels = ["real" if pool.labels[i] == 0 else f"{meta.loc[int(i), 'model']} w={meta.loc[int(i), 'guidance']:g}"
                   for i in pick]
    test_images, test_labels = pool.images[test_idx], pool.labels[test_idx]
    for arch, net in nets.items():
        x = pool.images[pick]
        maps = {"Saliency": saliency(net, x, 1, device=device), "Grad-CAM": gradcam(net, x, 1, device=device)}
        run.save_figure(f"saliency_{arch}", figures.saliency_figure(x, maps, pick_labels))
        mean_fake = saliency(net, test_images[test_labels == 1], 1, device=device).mean(0)
        mean_real = saliency(net, test_images[test_labels == 0], 1, device=device).mean(0)
        np.save(run.path / f"mean_saliency_{arch}_fake.npy", mean_fake)
        np.save(run.path / f"mean_saliency_{arch}_real.npy", mean_real)


def save_tables(run: RunDir, sweep: pd.DataFrame, pred: pd.DataFrame, by_model: pd.DataFrame,
                by_class: pd.DataFrame) -> None:
    """The run's CSV tables and their figures."""
    sweep.to_csv(run.path / "fraction_sweep.csv", index=False)
    pred.to_csv(run.path / "predictions.csv", index=False)
    by_model.to_csv(run.path / "fooling_by_model.csv", index=False)
    by_class.to_csv(run.path / "fooling_by_class.csv", index=False)
    run.save_figure("fraction_sweep", figures.fraction_sweep_figure(sweep))
    run.save_figure("fooling_by_model_guidance", figures.fooling_figure(by_model, "model_w"))
    run.save_figure("fooling_by_class", figures.fooling_figure(by_class, "class_label"))


def facade_metrics(sweep: pd.DataFrame, by_model: pd.DataFrame, by_class: pd.DataFrame,
                   accuracy: dict[str, float], real_err: pd.Series, pool: Pool, n_test: int) -> dict:
    """The run's metrics.json entries."""
    full = sweep.loc[sweep["fraction"] == sweep["fraction"].max()]
    return {
        "test_accuracy_all_models": accuracy,
        "false_alarm_rate_on_reals": real_err.to_dict(),
        "sweep": sweep.to_dict("records"),
        "test_accuracy_full_data": {f"{r.model}/{ARCH_LABEL[r.arch]}": r.test_accuracy for r in full.itertuples()},
        "most_fooling_model_guidance": most_fooling(by_model).to_dict("records"),
        "most_fooling_classes": most_fooling(by_class).to_dict("records"),
        "n_real": pool.n_real, "n_fake": pool.n_fake, "n_test": n_test,
    }


def facade_report(profile_name: str, seed: int, sweep: pd.DataFrame, by_model: pd.DataFrame,
                  by_class: pd.DataFrame, accuracy: dict[str, float], real_err: pd.Series) -> list[str]:
    """The run's report.md, as markdown pieces."""
    return [
        f"# facade run ({profile_name} profile, seed {seed})\n",
        "Real-vs-fake classifiers trained from scratch: real = held-out human drawings "
        "(exemplars excluded), fake = the models' samples for those classes.\n",
        "## Test accuracy, one classifier per architecture on all models' samples\n",
        md_table([{"classifier": k, "test_accuracy": v, "reals_called_fake": float(real_err.get(k, np.nan))}
                  for k, v in accuracy.items()]),
        "\n## Data-fraction sweep (per model)\n", md_table(sweep.to_dict("records")),
        "\n## What fools them most (share of fakes judged real, test part)\n",
        md_table(most_fooling(by_model).to_dict("records")), "\n", md_table(most_fooling(by_class).to_dict("records")),
        "\n## Figures\n- `figures/fraction_sweep.png`\n- `figures/fooling_by_model_guidance.png`\n"
        "- `figures/fooling_by_class.png`\n- `figures/saliency_*.png` (Captum Saliency and Grad-CAM "
        "for the 'fake' logit)\n",
    ]


def run_facade(run: RunDir, device: torch.device, progress: bool = True) -> Path:
    """The facade pipeline into the run folder: the shared stages (models, stimuli, held-out data),
    then the fraction sweep, the pooled classifiers, what fools them, their saliency, the report."""
    profile, log, seed = run.profile, run.log, run.seed
    f = profile.section("facade")
    _ckpts, _manifest, stim, _train, heldout, split = stages.shared_inputs(profile, run.cache, seed, device, log, progress)
    fakes_table, fakes = stim.rows(stim.table["source"] == "model")
    reals = real_pool(heldout, sorted(fakes_table["class_label"].unique()), set(split["exemplars"].values()))
    rng = np.random.default_rng(seed)  # one stream: the sweep's subsets, then the pool's

    sweep = sweep_table(fakes_table, fakes, reals, f, rng, device, seed, log)
    pool = pooled_set(fakes_table, fakes, reals, f["max_pooled"], rng)
    train_idx, test_idx = stratified_split(pool.labels, f["test_fraction"], seed)
    nets, pred, accuracy = classify_pool(pool, train_idx, test_idx, f, device, seed, log)
    by_model, by_class, real_err = fooling_tables(pred)
    save_saliency(run, nets, pool, test_idx, f["saliency_images"], device)
    save_tables(run, sweep, pred, by_model, by_class)

    run.metrics.update(facade_metrics(sweep, by_model, by_class, accuracy, real_err, pool, len(test_idx)))
    report = facade_report(profile.name, seed, sweep, by_model, by_class, accuracy, real_err)
    log.info("test accuracy (all models): %s", ", ".join(f"{k} {v:.2f}" for k, v in accuracy.items()))
    return run.finish(markdown(report))


def _train_on(images: torch.Tensor, labels: torch.Tensor, arch: str, epochs: int, batch_size: int,
              device: torch.device, seed: int) -> torch.nn.Module:
    """train_realfake on an already labelled split (0 = real, 1 = fake)."""
    return train_realfake(images[labels == 0], images[labels == 1], arch=arch, epochs=epochs,
                          batch_size=batch_size, device=device, seed=seed)
