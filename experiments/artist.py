"""The `artist` pipeline (Boutin et al. 2023, Diffusion Models as Artists): train DDPM, CFGDM and
FSDM; sample for held-out exemplars at guidance scales 0..2; recognizability (one-shot critic in
N-way 1-shot tasks), diversity and originality (SimCLR features); the generalization curves and
the diversity-vs-recognizability figure with the held-out human drawings as the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis import figures as afigures
from analysis import generalization as gen
from experiments import figures, stages
from experiments.rundir import RunDir, markdown, md_table
from models.classifiers.protonet import classify
from models.classifiers.simclr import extract_features


def critic_answers(critic: torch.nn.Module, exemplars: torch.Tensor, queries: torch.Tensor,
                   query_class: np.ndarray, n_way: int, seed: int, device: torch.device) -> np.ndarray:
    """1/0 per query: the one-shot critic's answer in an N-way 1-shot task whose support is the
    exemplar of the query's class plus n_way - 1 other classes' exemplars (drawn with a fixed
    seed per query index). exemplars (C, 1, H, W), one per class; query_class (Q,) in 0..C-1.
    Nearest prototype among the task's classes = argmax of the all-class probabilities
    restricted to those classes (the softmax is monotone in the distance)."""
    n_classes = exemplars.shape[0]
    n_way = min(n_way, n_classes)
    probs = classify(critic, exemplars, torch.arange(n_classes), queries, device=device).numpy()
    rng = np.random.default_rng(seed)
    correct = np.zeros(len(queries), dtype=np.int64)
    for i, own in enumerate(query_class):
        others = np.delete(np.arange(n_classes), own)
        task = np.concatenate([[own], rng.choice(others, n_way - 1, replace=False)])
        correct[i] = int(task[np.argmax(probs[i, task])] == own)
    return correct


def evaluate_samples(run: RunDir, device: torch.device, progress: bool = True) -> dict:
    """Train/reuse models and critics, sample, and score every sample and human drawing.
    Returns the per-item table, features, the stimuli and the critics (for the pipelines)."""
    profile, log = run.profile, run.log
    ckpts, manifest, stim, train_set, heldout, split = stages.shared_inputs(
        profile, run.cache, run.seed, device, log, progress)
    critics = stages.train_critics(profile, train_set, run.cache, run.seed, device, log)

    table = stim.table
    classes = sorted(table["class_label"].unique())
    class_index = {c: i for i, c in enumerate(classes)}
    exemplar_ids = [split["exemplars"][c] for c in classes]
    pos = {i: k for k, i in enumerate(heldout.ids)}
    exemplars = torch.stack([heldout.images[pos[e]] for e in exemplar_ids])

    # Human drawings: every held-out drawing of these classes except the exemplars (more than
    # the manifest's few real stimuli, so the reference curve is not noise).
    keep = [k for k, i in enumerate(heldout.ids)
            if heldout.class_names[int(heldout.labels[k])] in class_index and i not in set(exemplar_ids)]
    humans = pd.DataFrame({
        "stimulus_id": [heldout.ids[k] for k in keep], "source": "real", "model": "human",
        "guidance": np.nan,
        "class_label": [heldout.class_names[int(heldout.labels[k])] for k in keep],
    })
    samples = table.loc[table["source"] == "model", ["stimulus_id", "source", "model", "guidance", "class_label"]]
    items = pd.concat([samples, humans], ignore_index=True)
    model_idx = torch.as_tensor((table["source"] == "model").to_numpy().nonzero()[0])
    images = torch.cat([stim.images[model_idx], heldout.images[keep]])
    items["exemplar_id"] = [split["exemplars"][c] for c in items["class_label"]]
    cls = items["class_label"].map(class_index).to_numpy()

    c = profile.section("critics")
    items["correct"] = critic_answers(critics.protonet, exemplars, images, cls, c["n_way"], run.seed, device)
    feats = extract_features(critics.simclr, images, device=device)
    ex_feats = extract_features(critics.simclr, exemplars, device=device)
    items["originality"] = gen.originality(feats, ex_feats[cls])
    log.info("scored %d samples and %d human drawings of %d held-out classes (%d-way tasks)",
             len(samples), len(humans), len(classes), min(c["n_way"], len(classes)))
    return {"items": items, "features": feats, "stimuli": stim, "critics": critics,
            "checkpoints": ckpts, "exemplars": exemplars, "classes": classes, "heldout": heldout,
            "split": split, "manifest": manifest}


def summarise(items: pd.DataFrame, feats: np.ndarray) -> pd.DataFrame:
    """Per (model, guidance): n, recognizability (+ SE), mean originality and mean per-class
    diversity (mean over classes of the mean feature SD across the class's samples)."""
    by = ["model", "guidance"]
    d = items.copy()
    d["guidance"] = d["guidance"].fillna(-1.0)  # humans: no guidance (restored to NaN below)
    dr = gen.diversity_recognizability(d, feats, by)
    rows = []
    for (model, w), g in d.groupby(by, sort=True):
        div = dr.loc[(dr["model"] == model) & (dr["guidance"] == w), "diversity"]
        rows.append({
            "model": model, "guidance": np.nan if w < 0 else float(w), "n": len(g),
            "recognizability": float(g["correct"].mean()),
            "recognizability_se": float(g["correct"].std(ddof=1) / np.sqrt(len(g))) if len(g) > 1 else np.nan,
            "originality": float(g["originality"].mean()),
            "diversity": float(div.mean()),
        })
    return pd.DataFrame(rows)


def quality(items: pd.DataFrame, feats: np.ndarray, seed: int) -> pd.DataFrame:
    """Frechet distance and KID of each (model, guidance)'s SimCLR features against the human
    drawings' features, at equal N (the smaller of the two sizes), and FD-infinity (FD_N of
    subsets of all the model's samples against all human drawings, fitted against 1/N, its
    intercept: the bias-free FD that ../shared/DESIGN.md asks for; NaN below 4 samples)."""
    human = items["model"] == "human"
    ref = feats[human.to_numpy()]
    rows = []
    for (model, w), g in items.loc[~human].groupby(["model", "guidance"], sort=True):
        x = feats[g.index.to_numpy()]
        n = min(len(x), len(ref))
        rng = np.random.default_rng(seed)
        xs, rs = x[rng.choice(len(x), n, replace=False)], ref[rng.choice(len(ref), n, replace=False)]
        kid_mean, kid_sd = gen.kid(xs, rs, subset_size=min(100, max(2, n // 2)), n_subsets=20, seed=seed)
        fd_inf = gen.fd_infinity(x, ref, seed=seed)["fd_inf"] if len(x) >= 4 else np.nan
        rows.append({"model": model, "guidance": float(w), "n": n,
                     "fd": gen.frechet_distance(xs, rs), "fd_inf": fd_inf, "kid": kid_mean, "kid_sd": kid_sd})
    return pd.DataFrame(rows)


def _grid(result: dict, n_classes: int = 5) -> tuple:
    stim, table = result["stimuli"], result["stimuli"].table
    classes = result["classes"][:n_classes]
    models = table.loc[table["source"] == "model", ["model", "guidance"]].drop_duplicates()
    models = models.sort_values(["model", "guidance"]).itertuples(index=False)
    cols = [(m, w) for m, w in models]
    rows, exemplars = [], []
    for c in classes:
        row = []
        for m, w in cols:
            hit = table.index[(table["class_label"] == c) & (table["model"] == m) & (table["guidance"] == w)]
            row.append(stim.images[hit[0]])
        rows.append(row)
        exemplars.append(result["exemplars"][result["classes"].index(c)])
    return exemplars, rows, list(classes), [f"{m} w={w:g}" for m, w in cols]


def run_artist(run: RunDir, device: torch.device, progress: bool = True) -> Path:
    result = evaluate_samples(run, device, progress)
    items, feats = result["items"], result["features"]
    summary = summarise(items, feats)
    qual = quality(items, feats, run.seed)
    n_bins = int(min(10, items.groupby(["model", "guidance", "class_label"], dropna=False).size().min()))
    curves_in = items.assign(guidance=items["guidance"].fillna(-1.0))
    curves = gen.generalization_curve(curves_in, ["model", "guidance"], n_bins=n_bins)
    curves["guidance"] = curves["guidance"].where(curves["guidance"] >= 0)
    dr = gen.diversity_recognizability(curves_in, feats, ["model", "guidance"])
    dr["guidance"] = dr["guidance"].where(dr["guidance"] >= 0)

    items.to_csv(run.path / "items.csv", index=False)
    curves.to_csv(run.path / "generalization_curves.csv", index=False)
    dr.to_csv(run.path / "diversity_recognizability.csv", index=False)
    np.savez(run.path / "features.npz", stimulus_id=items["stimulus_id"].to_numpy(str), features=feats)
    items[["stimulus_id", "correct"]].to_csv(run.path / "critic.csv", index=False)

    run.save_figure("generalization_curves", afigures.generalization_figure(curves, ["model", "guidance"]))
    run.save_figure("diversity_vs_recognizability",
                    afigures.diversity_recognizability_figure(dr, ["model", "guidance"]))
    run.save_figure("recognizability_by_guidance", figures.recognizability_by_guidance(summary))
    run.save_figure("samples", figures.sample_grid(*_grid(result)))

    cfg = summary.loc[summary["model"] == "cfgdm"].sort_values("guidance")
    human = summary.loc[summary["model"] == "human"].iloc[0]
    run.metrics.update({
        "summary": summary.to_dict("records"),
        "quality": qual.to_dict("records"),
        "fd_infinity": {f"{r.model}@w={r.guidance:g}": r.fd_inf for r in qual.itertuples()},
        "recognizability": {f"{r.model}" + ("" if r.model == "human" else f"@w={r.guidance:g}"): r.recognizability
                            for r in summary.itertuples()},
        "cfgdm_recognizability_by_guidance": dict(zip(cfg["guidance"].map(lambda w: f"{w:g}"),
                                                      cfg["recognizability"], strict=True)),
        "human_recognizability": float(human["recognizability"]),
        "chance": 1.0 / min(run.profile.section("critics")["n_way"], len(result["classes"])),
        "n_classes": len(result["classes"]),
        "manifest": str(result["manifest"]),
        "checkpoints": {k: str(v) for k, v in result["checkpoints"].items()},
    })
    report = [
        f"# artist run ({run.profile.name} profile, seed {run.seed})\n",
        f"{len(result['classes'])} held-out classes; recognizability = accuracy of the one-shot "
        f"critic (ProtoNet) in {min(run.profile.section('critics')['n_way'], len(result['classes']))}-way "
        f"1-shot tasks (chance {run.metrics['chance']:.2f}); originality = SimCLR feature distance "
        "to the exemplar; diversity = mean feature SD across a class's samples. `human` = the "
        "held-out real drawings (reference).\n",
        "## Recognizability, originality, diversity\n", md_table(summary.to_dict("records")),
        "\n## Sample quality against the human drawings (SimCLR features)\n",
        "`fd`, `kid`: at equal N (`n`); `fd_inf`: FD-infinity, FD_N fitted against 1/N over subsets "
        "of all the model's samples, its intercept at 1/N = 0 (free of FD's small-N bias).\n\n",
        md_table(qual.to_dict("records")),
        "\n## Figures\n",
        "- `figures/samples.png`: exemplar and one sample per model and guidance scale\n",
        "- `figures/recognizability_by_guidance.png`\n- `figures/generalization_curves.png`\n",
        "- `figures/diversity_vs_recognizability.png`\n",
    ]
    log_sum = ", ".join(f"w={k}: {v:.2f}" for k, v in run.metrics["cfgdm_recognizability_by_guidance"].items())
    run.log.info("CFGDM recognizability %s; human drawings %.2f", log_sum, human["recognizability"])
    return run.finish(markdown(report))
