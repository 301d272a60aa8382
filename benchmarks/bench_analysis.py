"""Benchmark the whole analysis: 1,000,000 trials and 5,000,000 clicks (synthetic).

`python -m benchmarks analysis [--scale 1.0] [--no-write]`: simulates an export (Parquet), model
maps, encoder features, critic answers and classifier decisions, then runs the report CLI
(`python -m analysis report ...`) in a child process and records its wall time and peak RSS;
then times each stage in-process and compares two stages against naive per-trial/per-click
loops on a subset. Results go to BENCHMARKS.md section `analysis`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import agreement, generalization, judgments, load, maps, qc, synthetic_exports
from benchmarks.report import markdown_table, write_section

ROOT = Path(__file__).resolve().parent.parent


def make_inputs(root: Path, scale: float, seed: int = 0) -> dict[str, int | str]:
    """Write the synthetic study under `root`; returns sizes and paths."""
    rng = np.random.default_rng(seed)
    n_stim = max(20, int(2000 * scale))
    stim = synthetic_exports.stimuli(n_stim // 2, n_stim // 2, n_classes=20)
    n_rf_p, n_st_p, per = max(4, int(7000 * scale)), max(2, int(1000 * scale)), 100
    rf = synthetic_exports.realfake_trials(stim, n_rf_p, per, rng.normal(1.2, 0.4, n_rf_p),
                                  rng.normal(0.1, 0.3, n_rf_p), rng, exposure_ms=1000.0)
    timed = synthetic_exports.staircase_trials(stim, n_st_p, per, 400.0, rng)
    n_img, n_ck_p, k, size = max(4, int(1000 * scale)), 200, 25, 64
    ids = stim["stimulus_id"].tolist()[:n_img] if n_img <= len(stim) else None
    ids = ids or [f"img{i}" for i in range(n_img)]
    truth = synthetic_exports.blob_maps(n_img, size, rng)
    ck, clicks = synthetic_exports.clickme_export(truth, ids, n_ck_p, k, rng, stim)
    trials = pd.concat([rf, timed, ck], ignore_index=True)
    events = pd.DataFrame({"study": "sim", "participant": rng.choice(rf["participant"].unique(),
                                                                     5000),
                           "trial_index": 0, "kind": "blur", "t_ms": 1.0, "detail": "",
                           "received_at": ""})
    export = root / "export"
    export.mkdir(parents=True)
    trials.to_parquet(export / "trials.parquet", index=False)
    clicks.to_parquet(export / "clicks.parquet", index=False)
    events.to_parquet(export / "events.parquet", index=False)
    noise = rng.random(truth.shape).astype(np.float32)
    for method, m in (("saliency", truth + 0.3 * noise), ("random", noise)):
        d = root / "maps" / method
        d.mkdir(parents=True)
        for sid, arr in zip(ids, m, strict=True):
            np.save(d / f"{sid}.npy", arr.astype(np.float32))
        (d / "index.json").write_text(json.dumps({"method": method, "stimulus_ids": ids}))
    cls = stim["class_label"].str.removeprefix("class").astype(int).to_numpy()
    feats = rng.normal(0, 3, (20, 64))[cls] + rng.normal(size=(len(stim), 64))
    np.savez(root / "features.npz", stimulus_id=np.array(stim["stimulus_id"], dtype=str),
             features=feats)
    pd.DataFrame({"stimulus_id": stim["stimulus_id"],
                  "correct": (rng.random(len(stim)) < 0.8).astype(int)}).to_csv(
        root / "critic.csv", index=False)
    fake = stim["source"] == "model"
    pd.DataFrame({"classifier": "cnn", "stimulus_id": stim["stimulus_id"],
                  "answer": np.where(fake ^ (rng.random(len(stim)) < 0.2), "fake", "real")}
                 ).to_csv(root / "classifier.csv", index=False)
    return {"n_trials": len(trials), "n_clicks": len(clicks), "n_participants":
            trials["participant"].nunique(), "n_stimuli": len(stim), "n_click_images": n_img}


def report_child(root: Path, n_boot: int, repeats: int) -> tuple[float, float, float, list[str]]:
    """Run the report CLI in a child process: (wall s, CPU s (user + sys), peak RSS GiB, argv)."""
    argv = ["report", "--export", str(root / "export"), "--maps", str(root / "maps"),
            "--features", str(root / "features.npz"), "--critic", str(root / "critic.csv"),
            "--classifier", str(root / "classifier.csv"), "--out", str(root / "out"),
            "--n-boot", str(n_boot), "--ceiling-repeats", str(repeats)]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "analysis", *argv], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"report failed: {proc.stderr[-2000:]}")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru.ru_utime - ru0.ru_utime) + (ru.ru_stime - ru0.ru_stime)
    # ru_maxrss: the largest child so far (KiB on Linux); the report is the only child
    return wall, cpu, ru.ru_maxrss / 2**20, argv


def stage_times(root: Path, n_boot: int, repeats: int) -> list[tuple[str, float, float]]:
    """Time each analysis stage in-process on the written export: (name, wall s, CPU s)."""
    out: list[tuple[str, float, float]] = []

    def timed(name, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn()
        out.append((name, time.perf_counter() - t0, time.process_time() - c0))
        return res

    exp = timed("load export (Parquet) + type checks", lambda: load.load_export(root / "export"))
    timed("QC flags", lambda: qc.flag_participants(exp.trials, exp.events))
    rt = judgments.judgment_trials(exp.trials)
    both = ("participant", "stimulus")
    timed(f"SDT per model, two-way bootstrap ({n_boot})",
          lambda: judgments.sdt_table(rt, ["model"], resample=both, n_boot=n_boot))
    timed(f"SDT per model x guidance, two-way bootstrap ({n_boot})",
          lambda: judgments.sdt_table(rt, ["model", "guidance"], resample=both, n_boot=n_boot))
    timed("staircase thresholds", lambda: judgments.staircase_thresholds(rt))
    some = rt["participant"].drop_duplicates().sample(frac=1.0, random_state=0)[:100]
    timed("mixed logit (all trials of 100 participants)", lambda: judgments.mixed_logit(
        rt.loc[rt["participant"].isin(some)]))
    ck = exp.trials[exp.trials["task"] == "clickme"]
    idx = timed("click index (5M clicks to grid)",
                lambda: maps.click_index(ck, exp.clicks, (64, 64), 1, 2))
    timed("per-image maps + disc blur",
          lambda: maps.blur_maps(maps.mean_maps(idx), "disc"))
    timed(f"split-half ceiling ({repeats} repeats)",
          lambda: maps.split_half_ceiling(idx, repeats, 0))
    preds = pd.read_csv(root / "classifier.csv")
    timed("human vs classifier agreement", lambda: agreement.human_vs_classifier(
        rt, preds, n_boot))
    z = np.load(root / "features.npz")
    f = z["features"]
    timed("FD + KID + FD-infinity (1000 vs 1000, d=64)", lambda: (
        generalization.frechet_distance(f[::2], f[1::2]),
        generalization.kid(f[::2], f[1::2], 1000, 50),
        generalization.fd_infinity(f[::2], f[1::2])))
    return out


def naive_comparisons(root: Path) -> list[list[object]]:
    """Vectorised vs a per-click / per-resample Python loop on a subset."""
    exp = load.load_export(root / "export")
    ck = exp.trials[exp.trials["task"] == "clickme"]
    sub_ids = ck["stimulus_id"].unique()[:20]
    cks = ck[ck["stimulus_id"].isin(sub_ids)]
    cl = exp.clicks[exp.clicks["stimulus_id"].isin(sub_ids)]
    rows = []
    t0 = time.perf_counter()
    idx = maps.click_index(cks, cl, (64, 64))
    vec = maps.mean_maps(idx)
    t_vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive: dict[str, np.ndarray] = {}
    seen: dict[str, set] = {}
    for p, ti, sid, x, y in zip(cl["participant"], cl["trial_index"], cl["stimulus_id"],
                                cl["x"], cl["y"], strict=True):
        key = (p, ti, min(int(y * 64), 63), min(int(x * 64), 63))
        if key in seen.setdefault(sid, set()):
            continue
        seen[sid].add(key)
        naive.setdefault(sid, np.zeros((64, 64)))[key[2], key[3]] += 1
    n_sub = cks.groupby("stimulus_id").size()
    naive_maps = np.stack([naive[s] / n_sub[s] for s in idx.stimulus_ids])
    t_naive = time.perf_counter() - t0
    assert np.allclose(naive_maps, vec)
    rows.append([f"click maps, {len(cl):,} clicks", f"{t_naive:.2f}", f"{t_vec:.3f}",
                 f"{t_naive / t_vec:.0f}x"])
    rt = judgments.judgment_trials(exp.trials)
    parts = rt["participant"].unique()[:400]
    r = rt[rt["participant"].isin(parts)]
    b = 100
    t0 = time.perf_counter()
    judgments.sdt_table(r, [], n_boot=b)
    t_vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    groups = dict(tuple(r.groupby("participant")))
    for _ in range(b):
        s = pd.concat([groups[p] for p in rng.choice(parts, len(parts))])
        sig = s["source"] == "model"
        judgments.sdt((s["answer"][sig] == "fake").sum(), sig.sum(),
                      (s["answer"][~sig] == "fake").sum(), (~sig).sum())
    t_naive = time.perf_counter() - t0
    rows.append([f"participant bootstrap of d', {len(r):,} trials, {b} resamples",
                 f"{t_naive:.2f}", f"{t_vec:.3f}", f"{t_naive / t_vec:.0f}x"])
    return rows


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks analysis")
    ap.add_argument("--scale", type=float, default=1.0, help="1.0: 1M trials, 5M clicks")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--ceiling-repeats", type=int, default=50)
    ap.add_argument("--no-write", action="store_true", help="print, do not edit BENCHMARKS.md")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_analysis_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        sizes = make_inputs(root, args.scale)
        t_gen = time.perf_counter() - t0
        print(f"generated {sizes} in {t_gen:.1f} s", flush=True)
        load0 = os.getloadavg()[0]
        wall, cpu, peak_gib, cli = report_child(root, args.n_boot, args.ceiling_repeats)
        print(f"report CLI: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {peak_gib:.2f} GiB",
              flush=True)
        stages = stage_times(root, args.n_boot, args.ceiling_repeats)
        load1 = os.getloadavg()[0]
        for name, sec, c in stages:
            print(f"  {name}: {sec:.2f} s wall, {c:.2f} s CPU", flush=True)
        naive = naive_comparisons(root)
        for row in naive:
            print("  naive vs vectorised:", row, flush=True)
    cmd = "python -m benchmarks analysis" + (" " + " ".join(argv) if argv else "")
    md = [
        f"Command: `{cmd}` (synthetic study generated in the bench; {os.cpu_count()} CPU cores).",
        "",
        f"Input: {sizes['n_trials']:,} trials ({sizes['n_participants']:,} participants, "
        f"{sizes['n_stimuli']:,} stimuli) and {sizes['n_clicks']:,} clicks on "
        f"{sizes['n_click_images']:,} images (64x64 grid), as Parquet.",
        "",
        markdown_table(["what", "value", "goal"], [
            ["whole report (`python -m analysis report ...`, child process), wall time",
             f"{wall:.1f} s", "< 60 s"],
            ["whole report, CPU time (user + sys)", f"{cpu:.1f} s", ""],
            ["whole report, peak RSS", f"{peak_gib:.2f} GiB", "< 4 GB"],
        ]),
        "",
        f"Load average of the machine during the run: {load0:.1f} at the start, {load1:.1f} "
        "after the stages (2 cores shared with other jobs: wall time above CPU time means the "
        "process waited for a core).",
        "",
        f"Stages timed in-process (same data; {args.n_boot} bootstrap resamples, "
        f"{args.ceiling_repeats} split-half repeats):",
        "",
        markdown_table(["stage", "wall s", "CPU s"],
                       [[n, f"{s:.2f}", f"{c:.2f}"] for n, s, c in stages]),
        "",
        "The split-half ceiling (each repeat ranks two 1000 x 4096 maps) is the largest "
        "share; `--ceiling-repeats` scales it linearly. The mixed model is fitted on whole "
        "participants up to `--mixed-max-trials` (10,000) trials.",
        "",
        "Vectorised vs a naive Python loop (per click / per resample), on a subset, same run:",
        "",
        markdown_table(["computation", "naive loop (s)", "vectorised (s)", "speed-up"], naive),
    ]
    text = "\n".join(md)
    print(text)
    if not args.no_write:
        write_section("analysis", text)
    return 0
