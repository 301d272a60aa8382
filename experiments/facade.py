"""The `facade` pipeline (Seeing Through the Facade, 2023): real-vs-fake classifiers (the small
CNN and ResNet-18, trained from scratch) on each model's samples against held-out human
drawings, with the training-data-fraction sweep; their saliency maps (Captum Saliency and
Grad-CAM); and which models, classes and guidance scales fool them most."""

from __future__ import annotations

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


def _epochs(profile, arch: str) -> int:
    f = profile.section("facade")
    return int(f["resnet_epochs"] if arch == "resnet18" else f["epochs"])


def run_facade(run: RunDir, device: torch.device, progress: bool = True) -> Path:
    profile, log, seed = run.profile, run.log, run.seed
    f = profile.section("facade")
    ckpts = stages.train_models(profile, run.cache, device, log, progress)
    manifest = stages.make_stimuli(profile, ckpts, run.cache, seed, device, log, progress)
    stim = stages.read_stimuli(manifest)
    _train, heldout, split = stages.split_data(profile.models[0])
    fakes_table, fakes = stim.rows(stim.table["source"] == "model")
    classes = sorted(fakes_table["class_label"].unique())
    reals = real_pool(heldout, classes, set(split["exemplars"].values()))
    rng = np.random.default_rng(seed)
    models = sorted(fakes_table["model"].unique())

    # 1. The data-fraction sweep, per model and architecture, reals matched in number.
    sweep_rows = []
    for model in models:
        idx = (fakes_table["model"] == model).to_numpy().nonzero()[0]
        if len(idx) > f["max_per_model"]:  # a seeded subset; samples are ordered by guidance
            idx = np.sort(rng.choice(idx, f["max_per_model"], replace=False))
        fake = fakes[torch.as_tensor(idx)]
        real = reals[torch.as_tensor(np.sort(rng.choice(len(reals), min(len(reals), len(fake)), replace=False)))]
        for arch in f["sweep_archs"]:
            log.info("sweep: %s vs real, %s, fractions %s", model, arch, f["fractions"])
            for p in fraction_sweep(real, fake, fractions=f["fractions"], arch=arch,
                                    test_fraction=f["test_fraction"], epochs=_epochs(profile, arch),
                                    device=device, seed=seed):
                sweep_rows.append({"model": model, "arch": arch, **p.as_dict()})
    sweep = pd.DataFrame(sweep_rows)

    # 2. One classifier per architecture on all models' samples; the held-out test part tells
    # which models, classes and guidance scales fool it.
    keep = np.arange(len(fakes))
    if len(keep) > f["max_pooled"]:
        keep = np.sort(rng.choice(keep, f["max_pooled"], replace=False))
    fakes_table, fakes = fakes_table.iloc[keep].reset_index(drop=True), fakes[torch.as_tensor(keep)]
    real = reals[torch.as_tensor(np.sort(rng.choice(len(reals), min(len(reals), len(fakes)), replace=False)))]
    images = torch.cat([real, fakes])
    labels = torch.cat([torch.zeros(len(real), dtype=torch.long), torch.ones(len(fakes), dtype=torch.long)])
    meta = pd.concat([pd.DataFrame({"model": [""] * len(real), "guidance": np.nan, "class_label": ""}),
                      fakes_table[["model", "guidance", "class_label", "stimulus_id"]]], ignore_index=True)
    train_idx, test_idx = stratified_split(labels, f["test_fraction"], seed)
    preds, nets, accuracy = [], {}, {}
    for arch in f["archs"]:
        log.info("all models vs real: %s on %d images", arch, len(train_idx))
        net = _train_on(images[train_idx], labels[train_idx], arch, _epochs(profile, arch), f["batch_size"],
                        device, seed)
        nets[arch] = net
        p_fake = predict_logits(net, images[test_idx], device=device).softmax(1)[:, 1].numpy()
        said_fake = p_fake > 0.5
        truth = labels[test_idx].numpy() == 1
        accuracy[ARCH_LABEL[arch]] = float((said_fake == truth).mean())
        m = meta.iloc[test_idx.numpy()].reset_index(drop=True)
        m["classifier"], m["p_fake"], m["said_fake"], m["is_fake"] = ARCH_LABEL[arch], p_fake, said_fake, truth
        preds.append(m)
    pred = pd.concat(preds, ignore_index=True)
    fakes_pred = pred.loc[pred["is_fake"]].assign(fooled=lambda d: (~d["said_fake"]).astype(float))
    by_model = (fakes_pred.assign(model_w=fakes_pred["model"] + " w=" + fakes_pred["guidance"].map("{:g}".format))
                .groupby(["classifier", "model_w"]).agg(fooled_rate=("fooled", "mean"), n=("fooled", "size"))
                .reset_index())
    by_class = (fakes_pred.groupby(["classifier", "class_label"])
                .agg(fooled_rate=("fooled", "mean"), n=("fooled", "size")).reset_index())
    real_err = pred.loc[~pred["is_fake"]].groupby("classifier")["said_fake"].mean()

    # 3. Saliency of each classifier on a few test reals and fakes.
    k = f["saliency_images"]
    test_labels = labels[test_idx]
    pick = torch.cat([test_idx[test_labels == 0][:k // 2 + k % 2], test_idx[test_labels == 1][: k // 2]])
    pick_labels = ["real" if labels[i] == 0 else f"{meta.loc[int(i), 'model']} w={meta.loc[int(i), 'guidance']:g}"
                   for i in pick]
    for arch, net in nets.items():
        x = images[pick]
        maps = {"Saliency": saliency(net, x, 1, device=device), "Grad-CAM": gradcam(net, x, 1, device=device)}
        run.save_figure(f"saliency_{arch}", figures.saliency_figure(x, maps, pick_labels))
        mean_fake = saliency(net, images[test_idx][test_labels == 1], 1, device=device).mean(0)
        mean_real = saliency(net, images[test_idx][test_labels == 0], 1, device=device).mean(0)
        np.save(run.path / f"mean_saliency_{arch}_fake.npy", mean_fake)
        np.save(run.path / f"mean_saliency_{arch}_real.npy", mean_real)

    sweep.to_csv(run.path / "fraction_sweep.csv", index=False)
    pred.to_csv(run.path / "predictions.csv", index=False)
    by_model.to_csv(run.path / "fooling_by_model.csv", index=False)
    by_class.to_csv(run.path / "fooling_by_class.csv", index=False)
    run.save_figure("fraction_sweep", figures.fraction_sweep_figure(sweep))
    run.save_figure("fooling_by_model_guidance", figures.fooling_figure(by_model, "model_w"))
    run.save_figure("fooling_by_class", figures.fooling_figure(by_class, "class_label"))

    full = sweep.loc[sweep["fraction"] == sweep["fraction"].max()]
    worst = by_model.sort_values("fooled_rate", ascending=False).groupby("classifier").head(3)
    worst_cls = by_class.sort_values("fooled_rate", ascending=False).groupby("classifier").head(3)
    run.metrics.update({
        "test_accuracy_all_models": accuracy,
        "false_alarm_rate_on_reals": real_err.to_dict(),
        "sweep": sweep.to_dict("records"),
        "test_accuracy_full_data": {f"{r.model}/{ARCH_LABEL[r.arch]}": r.test_accuracy for r in full.itertuples()},
        "most_fooling_model_guidance": worst.to_dict("records"),
        "most_fooling_classes": worst_cls.to_dict("records"),
        "n_real": int(len(real)), "n_fake": int(len(fakes)), "n_test": int(len(test_idx)),
    })
    report = [
        f"# facade run ({profile.name} profile, seed {seed})\n",
        "Real-vs-fake classifiers trained from scratch: real = held-out human drawings "
        "(exemplars excluded), fake = the models' samples for those classes.\n",
        "## Test accuracy, one classifier per architecture on all models' samples\n",
        md_table([{"classifier": k, "test_accuracy": v, "reals_called_fake": float(real_err.get(k, np.nan))}
                  for k, v in accuracy.items()]),
        "\n## Data-fraction sweep (per model)\n", md_table(sweep.to_dict("records")),
        "\n## What fools them most (share of fakes judged real, test part)\n",
        md_table(worst.to_dict("records")), "\n", md_table(worst_cls.to_dict("records")),
        "\n## Figures\n- `figures/fraction_sweep.png`\n- `figures/fooling_by_model_guidance.png`\n"
        "- `figures/fooling_by_class.png`\n- `figures/saliency_*.png` (Captum Saliency and Grad-CAM "
        "for the 'fake' logit)\n",
    ]
    log.info("test accuracy (all models): %s", ", ".join(f"{k} {v:.2f}" for k, v in accuracy.items()))
    return run.finish(markdown(report))


def _train_on(images: torch.Tensor, labels: torch.Tensor, arch: str, epochs: int, batch_size: int,
              device: torch.device, seed: int) -> torch.nn.Module:
    """train_realfake on an already labelled split (0 = real, 1 = fake)."""
    return train_realfake(images[labels == 0], images[labels == 1], arch=arch, epochs=epochs,
                          batch_size=batch_size, device=device, seed=seed)
