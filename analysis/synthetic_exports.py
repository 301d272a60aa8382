"""Simulated participants with known ground truth, written in the export's columns (§3).

Used by the recovery tests and the benchmark: observers with a set d' and criterion, and
ClickMe players whose clicks are drawn from a known importance map.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from analysis import staircase
from analysis.load import CLICK_COLUMNS, EVENT_COLUMNS, TRIAL_COLUMNS


def stimuli(n_real: int, n_fake: int, models: tuple[str, ...] = ("ddpm", "cfgdm"),
            guidances: tuple[float, ...] = (0.0, 1.0), n_classes: int = 5) -> pd.DataFrame:
    """A manifest-like table: reals first, then fakes spread over models x guidance."""
    rows = []
    for i in range(n_real):
        # the first real of each class is its exemplar; later reals are drawings made from it
        ex = f"real-{i % n_classes}" if i >= n_classes else ""
        rows.append(dict(stimulus_id=f"real-{i}", source="real", model="",
                         class_label=f"class{i % n_classes}", exemplar_id=ex, guidance=np.nan))
    combos = [(m, g) for m in models for g in guidances]
    for i in range(n_fake):
        m, g = combos[i % len(combos)]
        rows.append(dict(stimulus_id=f"{m}-w{g}-{i}", source="model", model=m,
                         class_label=f"class{i % n_classes}", exemplar_id=f"real-{i % n_classes}",
                         guidance=g))
    return pd.DataFrame(rows)


# Every simulated participant started under one design version. The study's export has this
# column beside the documented ones analysis reads (analysis.load ignores it).
SIM_DESIGN_HASH = hashlib.sha256(b"simulated study design").hexdigest()
TRIAL_EXPORT_COLUMNS = (*TRIAL_COLUMNS, "design_hash")


def _trial_frame(n: int, task: str) -> dict[str, object]:
    return {"study": "sim", "task": task, "participant_status": "completed", "sampler": "ddim",
            "steps": 50.0, "seed": 0.0, "received_at": "2026-01-01T00:00:00Z",
            "design_hash": SIM_DESIGN_HASH}


def realfake_trials(
    stim: pd.DataFrame,
    n_participants: int,
    trials_per_participant: int,
    dprime: float | np.ndarray,
    criterion: float | np.ndarray,
    rng: np.random.Generator,
    exposure_ms: float = 1000.0,
) -> pd.DataFrame:
    """Equal-variance Gaussian observers: evidence ~ N(+-d'/2, 1), say fake when above c.

    dprime, criterion: scalars or (n_participants,) arrays. Each participant sees
    `trials_per_participant` stimuli drawn at random. Returns a trials table with the §3 columns.
    """
    n = n_participants * trials_per_participant
    pid = np.repeat(np.arange(n_participants), trials_per_participant)
    sidx = rng.integers(0, len(stim), n)
    signal = (stim["source"].to_numpy() == "model")[sidx]
    d = np.broadcast_to(np.asarray(dprime, float), (n_participants,))[pid]
    c = np.broadcast_to(np.asarray(criterion, float), (n_participants,))[pid]
    evidence = rng.standard_normal(n) + np.where(signal, d / 2, -d / 2)
    say_fake = evidence > c
    df = pd.DataFrame(_trial_frame(n, "realfake"), index=pd.RangeIndex(n))
    df["participant"] = pd.Series(np.char.add("p", pid.astype(str)))
    df["condition"] = "unlimited"
    df["trial_index"] = np.tile(np.arange(trials_per_participant), n_participants)
    df["trial_kind"] = "main"
    for col in ("stimulus_id", "source", "model", "class_label", "exemplar_id", "guidance"):
        df[col] = stim[col].to_numpy()[sidx]
    df["answer"] = np.where(say_fake, "fake", "real")
    df["correct"] = (say_fake == signal).astype(float)
    df["confidence"] = np.nan
    df["rt_ms"] = 400 + rng.gamma(4.0, 150.0, n)
    df["exposure_ms"] = exposure_ms
    df["n_clicks"] = 0
    df["client_uuid"] = pd.Series(np.char.add("u", np.arange(n).astype(str)))
    return df[list(TRIAL_EXPORT_COLUMNS)]


def sample_clicks(
    true_maps: np.ndarray,
    n_participants: int,
    clicks_per_trial: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw click points from known maps.

    true_maps: (n_images, H, W) non-negative. Every participant does one trial per image and
    places `clicks_per_trial` points with probability proportional to the map, uniformly inside
    the chosen pixel. Returns (image, participant, x, y), each (n_images*n_participants*k,),
    x and y in [0, 1].
    """
    n_img, h, w = true_maps.shape
    flat = true_maps.reshape(n_img, -1).astype(np.float64)
    cdf = np.cumsum(flat / flat.sum(axis=1, keepdims=True), axis=1)
    per_img = n_participants * clicks_per_trial
    u = rng.random((n_img, per_img))
    pix = np.empty((n_img, per_img), dtype=np.int64)
    for i in range(n_img):  # one searchsorted per image, vectorised over its clicks
        pix[i] = np.minimum(np.searchsorted(cdf[i], u[i], side="right"), h * w - 1)
    image = np.repeat(np.arange(n_img), per_img)
    participant = np.tile(np.repeat(np.arange(n_participants), clicks_per_trial), n_img)
    pix = pix.ravel()
    x = (pix % w + rng.random(pix.size)) / w
    y = (pix // w + rng.random(pix.size)) / h
    return image, participant, np.clip(x, 0, 1), np.clip(y, 0, 1)


def clickme_export(
    true_maps: np.ndarray,
    stimulus_ids: list[str],
    n_participants: int,
    clicks_per_trial: int,
    rng: np.random.Generator,
    stim: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ClickMe trials table and clicks table (§3) with clicks drawn from `true_maps`."""
    n_img = len(stimulus_ids)
    image, participant, x, y = sample_clicks(true_maps, n_participants, clicks_per_trial, rng)
    ids = np.asarray(stimulus_ids, dtype=object)
    n = n_img * n_participants
    t_img = np.repeat(np.arange(n_img), n_participants)
    t_pid = np.tile(np.arange(n_participants), n_img)
    trials = pd.DataFrame(_trial_frame(n, "clickme"), index=pd.RangeIndex(n))
    trials["participant"] = pd.Series(np.char.add("c", t_pid.astype(str)))
    trials["condition"] = "clickme"
    trials["trial_index"] = t_img
    trials["trial_kind"] = "main"
    trials["stimulus_id"] = ids[t_img]
    meta = stim.set_index("stimulus_id") if stim is not None else None
    for col, default in (("source", "model"), ("model", "ddpm"), ("class_label", "class0"),
                         ("exemplar_id", ""), ("guidance", np.nan)):
        trials[col] = meta.loc[ids[t_img], col].to_numpy() if meta is not None else default
    trials["answer"] = ""
    trials["correct"] = np.nan
    trials["confidence"] = np.nan
    trials["rt_ms"] = 3000.0
    trials["exposure_ms"] = np.nan
    trials["n_clicks"] = clicks_per_trial
    trials["client_uuid"] = pd.Series(np.char.add("k", np.arange(n).astype(str)))
    clicks = pd.DataFrame({
        "study": "sim",
        "participant": pd.Series(np.char.add("c", participant.astype(str))),
        "trial_index": image,
        "stimulus_id": ids[image],
        "order": np.tile(np.arange(clicks_per_trial), n),
        "x": x, "y": y,
        "t_ms": np.tile(np.arange(clicks_per_trial) * 100.0, n),
        "stroke": 0,
    })
    return trials[list(TRIAL_EXPORT_COLUMNS)], clicks[list(CLICK_COLUMNS)]


def empty_events() -> pd.DataFrame:
    """An events table with the §3 columns and no rows."""
    return pd.DataFrame({c: pd.Series([], dtype=str) for c in EVENT_COLUMNS})


def blob_maps(n_images: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth ground-truth maps: (n_images, size, size) sums of 2-3 Gaussian blobs plus a floor."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    maps = np.full((n_images, size, size), 0.02)
    for _ in range(3):
        cx, cy = rng.uniform(0.2, 0.8, (2, n_images, 1, 1))
        s = rng.uniform(0.08, 0.2, (n_images, 1, 1))
        maps += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s**2))
    return maps


def staircase_trials(
    stim: pd.DataFrame,
    n_participants: int,
    n_trials: int,
    threshold_ms: float,
    rng: np.random.Generator,
    rule: staircase.StaircaseRule | None = None,
    slope_ms: float = 60.0,
) -> pd.DataFrame:
    """HYPE-time observers on the study app's staircase over exposure (ms).

    P(correct | exposure e) = 0.5 + 0.5 / (1 + exp(-(e - threshold_ms) / slope_ms)). Each
    participant's exposures follow `rule` (default: the app's defaults, 1-up-3-down in 50 ms
    steps within 100-1000 ms from 500 ms) through `analysis.staircase`, the functions the
    server runs; with up = 1 the track converges near the exposure where
    P(correct) = 0.5 ** (1 / rule.down). Returns a trials table with the §3 columns,
    condition "timed".
    """
    rule = staircase.StaircaseRule() if rule is None else rule
    states = [staircase.initial_state(rule) for _ in range(n_participants)]
    e = np.empty((n_participants, n_trials))
    c = np.empty((n_participants, n_trials), bool)
    for j in range(n_trials):  # one draw per trial position, vectorised across participants
        e[:, j] = [state["exposure_ms"] for state in states]
        p = 0.5 + 0.5 / (1 + np.exp(-(e[:, j] - threshold_ms) / slope_ms))
        c[:, j] = rng.random(n_participants) < p
        states = [staircase.update(state, bool(ok), rule)
                  for state, ok in zip(states, c[:, j], strict=True)]
    e, c = e.ravel(), c.ravel()
    df = realfake_trials(stim, n_participants, n_trials, 1.0, 0.0, rng)
    signal = (df["source"] == "model").to_numpy()
    df["participant"] = df["participant"].str.replace("p", "s", n=1)
    df["condition"] = "timed"
    df["exposure_ms"] = e
    df["correct"] = c.astype(float)
    df["answer"] = np.where(c == signal, "fake", "real")
    df["client_uuid"] = df["client_uuid"].str.replace("u", "t", n=1)
    return df


def write_study(out: str, fmt: str = "csv", seed: int = 0) -> dict[str, str]:
    """Write a small simulated study: an export (§3) in `fmt`, model maps (§4), encoder
    features, one-shot critic answers and classifier decisions, under folder `out`.

    Returns {name: path}. The report test and the example in docs/analysis.md use it.
    """
    from pathlib import Path

    rng = np.random.default_rng(seed)
    root = Path(out)
    export = root / "export"
    export.mkdir(parents=True, exist_ok=True)
    stim = stimuli(24, 48)
    rf = realfake_trials(stim, 12, 60, 1.2, 0.2, rng, exposure_ms=800.0)
    timed = staircase_trials(stim, 6, 40, 400.0, rng)
    catch = realfake_trials(stim, 12, 4, 4.0, 0.0, rng)
    catch["trial_kind"] = "catch"
    catch["trial_index"] += 60
    catch["client_uuid"] = catch["client_uuid"].str.replace("u", "x", n=1)
    bad = catch["participant"] == "p0"  # one inattentive participant fails the catch trials
    catch.loc[bad, "answer"] = np.where(catch.loc[bad, "source"] == "model", "real", "fake")
    catch.loc[bad, "correct"] = 0.0
    size = 16
    ids = stim["stimulus_id"].tolist()[:12]
    truth = blob_maps(len(ids), size, rng)
    ck_trials, clicks = clickme_export(truth, ids, 10, 15, rng, stim)
    trials = pd.concat([rf, timed, catch, ck_trials], ignore_index=True)
    events = pd.DataFrame({"study": "sim", "participant": ["p1"] * 8, "trial_index": 3,
                           "kind": "blur", "t_ms": 10.0, "detail": "", "received_at": ""})
    paths = {}
    for name, df in (("trials", trials), ("clicks", clicks), ("events", events)):
        path = export / f"{name}.{fmt}"
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
        paths[name] = str(path)
    maps_dir = root / "maps"
    noise = rng.random(truth.shape)
    import json

    for method, m in (("saliency", truth + 0.2 * noise), ("random", noise)):
        d = maps_dir / method
        d.mkdir(parents=True, exist_ok=True)
        for sid, arr in zip(ids, m, strict=True):
            np.save(d / f"{sid}.npy", arr.astype(np.float32))
        (d / "index.json").write_text(json.dumps({"method": method, "params": {},
                                                  "checkpoint": "sim", "stimulus_ids": ids}))
    paths["maps"] = str(maps_dir)
    # features: reals near class centres, fakes further away the higher their index
    centres = rng.normal(0, 3, (5, 8))
    cls = stim["class_label"].str.removeprefix("class").astype(int).to_numpy()
    spread = np.where(stim["source"] == "model", 1.5, 1.0)[:, None]
    feats = centres[cls] + spread * rng.normal(size=(len(stim), 8))
    np.savez(root / "features.npz", stimulus_id=np.array(stim["stimulus_id"], dtype=str),
             features=feats)
    paths["features"] = str(root / "features.npz")
    correct = (rng.random(len(stim)) < np.where(stim["source"] == "model", 0.7, 0.9)).astype(int)
    pd.DataFrame({"stimulus_id": stim["stimulus_id"], "correct": correct}).to_csv(
        root / "critic.csv", index=False)
    paths["critic"] = str(root / "critic.csv")
    truth_fake = stim["source"] == "model"
    flip = rng.random(len(stim)) < 0.25
    answer = np.where(truth_fake ^ flip, "fake", "real")
    pd.DataFrame({"classifier": "cnn", "stimulus_id": stim["stimulus_id"],
                  "answer": answer}).to_csv(root / "classifier.csv", index=False)
    paths["classifier"] = str(root / "classifier.csv")
    return paths
