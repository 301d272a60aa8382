"""The `study` pipeline: build a ClickMe study and a real-or-fake study from the stimuli
manifest, serve them (study.serving) on 127.0.0.1, run simulated participants through the real
HTTP API, export, compute model maps for the ClickMe stimuli, analyse, report.

The simulated participants have known ground truth (study.simulated_participants): ClickMe `clicker`s click
where the ink is, real-or-fake `observer`s have a set d'. The run checks that the analysis gives
both back, so it pilots the whole platform the way a researcher would before going live."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from analysis import figures as afigures
from analysis import judgments, map_checks, maps
from analysis.load import Export, load_export, load_maps
from analysis.report import ExtraInputs, ReportOptions, build_report
from experiments import modelmaps, stages, studies
from experiments.rundir import RunDir, markdown, md_table
from experiments.server import serve, study_env, write_env
from models.classifiers.feedback import FeedbackClassifier
from models.data import ImageDataset
from study.simulated_participants import SimulationConfig, run_simulation


def _ink_maps(stim: stages.Stimuli, ids: np.ndarray) -> np.ndarray:
    """The clicker's known importance map of each image: its ink, (n, H, W) in [0, 1]."""
    pos = {s: i for i, s in enumerate(stim.table["stimulus_id"])}
    return np.stack([(stim.images[pos[s], 0].numpy() + 1.0) / 2.0 for s in ids])


def comparison_note(method: str, row: dict, verdict: dict | None) -> str:
    """One sentence on whether a method's alignment with people can mean anything here, from its
    alignment with the clickers' known map and the known-truth benchmark's verdict."""
    if verdict is None:
        return "not covered by the known-truth benchmark: read its alignment with care."
    if not verdict["works"]:
        failed = [m for m, r in verdict["models"].items() if not r["works"]]
        return ("FAILS the known-truth benchmark (on " + ", ".join(failed) + "): its maps do not show what "
                "decides the model's output, so its alignment with people says nothing about the model.")
    if row["indistinguishable_from_zero"]:
        return ("its alignment with the clickers' known map is indistinguishable from zero although the "
                "known-truth benchmark says the method works: the comparison with people is not meaningful "
                "here (the model may not have learned this data, or the map has too few noise draws).")
    return "passes the known-truth benchmark and follows the known map here."


def known_map_check(model_maps: dict[str, dict[str, np.ndarray]], stim: stages.Stimuli, n_boot: int,
                    seed: int) -> tuple[list[dict], list[str]]:
    """Each model-map method against the simulated clickers' known map (the ink) on the images
    every method has: rows (method, Spearman with CI, benchmark verdict, note) and report text."""
    ids = sorted(set.intersection(*(set(m) for m in model_maps.values()))) if model_maps else []
    if not ids:
        return [], []
    known = _ink_maps(stim, np.array(ids))
    table = map_checks.known_map_alignment({k: np.stack([v[s] for s in ids]) for k, v in model_maps.items()},
                                           known, n_boot, seed)
    verdicts = modelmaps.known_truth_verdicts()
    rows = []
    for r in table.to_dict("records"):
        v = verdicts.get(r["method"])
        r["known_truth"] = "no entry" if v is None else ("works" if v["works"] else "fails")
        r["note"] = comparison_note(r["method"], r, v)
        rows.append(r)
    src = verdicts.get("_source", {})
    text = [
        "\n## Model maps against the clickers' known map\n",
        "The simulated clickers click where the ink is, so a model map that shows what matters for the "
        "drawing should rank ink pixels high. Spearman(model map, ink) per image, mean with a bootstrap "
        f"95% CI over {len(ids)} images; the known-truth column is the verdict of "
        f"`{src.get('command', 'python -m benchmarks attribution_truth')}` ({src.get('date', 'not run')}).\n\n",
        md_table([{k: r[k] for k in ("method", "spearman", "spearman_lo", "spearman_hi", "known_truth")}
                  for r in rows]),
        "\n",
        "".join(f"- `{r['method']}`: {r['note']}\n" for r in rows),
    ]
    return rows, text


def image_counts(cfg: dict) -> tuple[int, int, int]:
    """Trials per participant and the number of ClickMe and of real-or-fake images: enough that
    each participant sees each image at most once, few enough that every ClickMe image gets >= 2
    participants (the human map needs them)."""
    trials = int(cfg["trials_per_participant"])
    n_click = max(trials, cfg["clickme_participants"] * trials // 3)
    n_rf = max(trials, cfg["realfake_participants"] * trials // 3)
    return trials, n_click, n_rf


def build_site(site_dir: Path, plans: list[studies.StudyPlan], manifest: Path,
               feedback_ckpt: Path) -> tuple[dict[str, str], studies.StudySite, list[str]]:
    """A SQLite study site under site_dir with every planned study created live and a researcher
    account; its environment (also saved as server_env.json), the site and the created slugs."""
    env = study_env(f"sqlite:///{site_dir / 'study.db'}", site_dir / "stimuli", site_dir / "instance",
                    feedback_checkpoint=feedback_ckpt)
    write_env(env, site_dir / "server_env.json")
    site = studies.StudySite(env)
    created = [site.ensure_study(p, manifest.parent)[0].slug for p in plans]
    site.ensure_researcher("researcher@example.org")
    return env, site, created


def simulated_participants(cfg: dict, seed: int) -> dict[str, SimulationConfig]:
    """Who does each study: ClickMe clickers (they click the ink) and real-or-fake observers with
    the profile's d'."""
    return {
        "run-clickme": SimulationConfig(behaviour="clicker", n=cfg["clickme_participants"],
                                        concurrency=4, seed=seed),
        "run-realfake": SimulationConfig(behaviour="observer", n=cfg["realfake_participants"],
                                         concurrency=4, seed=seed, dprime=cfg["observer_dprime"]),
    }


def run_participants(env: dict[str, str], site: studies.StudySite, behaviours: dict[str, SimulationConfig],
                     workers: int, log_path: Path, log: logging.Logger) -> dict[str, dict]:
    """Serve the site on 127.0.0.1 and run each study's simulated participants over
    the HTTP API; each study's simulation summary."""
    sims = {}
    with serve(env, workers=workers, log_path=log_path) as url:
        log.info("serving at %s (%d workers)", url, workers)
        for slug, sim_cfg in behaviours.items():
            result = run_simulation(url, slug, sim_cfg, site.truth(slug))
            sims[slug] = result.summary()
            log.info("%s: %d participants completed, %d/%d responses confirmed, %d errors", slug,
                     result.completed, result.confirmed, result.sent, result.errors)
    return sims


def exemplar_images(heldout: ImageDataset, exemplars: dict[str, str], classes: Sequence[str]) -> torch.Tensor:
    """The conditioning exemplar of each entry's class (`exemplars`: class -> image id), (n, 1, H, W)."""
    pos = {i: k for k, i in enumerate(heldout.ids)}
    return torch.stack([heldout.images[pos[exemplars[c]]] for c in classes])


def attribution_checkpoint(ckpts: dict[str, Path]) -> Path:
    """The diffusion model whose maps are compared with people's: CFGDM when the run has it, else
    the first model."""
    return ckpts["cfgdm"] if "cfgdm" in ckpts else next(iter(ckpts.values()))


def clickme_model_maps(out: Path, stim: stages.Stimuli, shown: Sequence[str], heldout: ImageDataset,
                       split: dict, ckpts: dict[str, Path], feedback_ckpt: Path, device: torch.device,
                       seed: int) -> list[str]:
    """Model maps (diffusion attribution and the feedback classifier's saliency) of the ClickMe
    stimuli people saw, written under `out`; the method names."""
    rows, images = stim.rows(stim.table["stimulus_id"].isin(shown))
    feedback = FeedbackClassifier.load(feedback_ckpt, device)
    cls_idx = torch.tensor([feedback.class_names.index(c) for c in rows["class_label"]])
    exemplars = exemplar_images(heldout, split["exemplars"], rows["class_label"])
    return modelmaps.stimulus_maps(out, list(rows["stimulus_id"]), images, exemplars, cls_idx,
                                   attribution_checkpoint(ckpts), feedback, feedback_ckpt, device, seed)


def analysis_reports(run: RunDir, exports: dict[str, Path], manifest: Path, cfg: dict, seed: int) -> dict[str, Path]:
    """The analysis package's HTML report of each study (ClickMe with the model maps)."""
    opt = ReportOptions(n_boot=cfg["n_boot"], ceiling_repeats=20, min_subjects=2, seed=seed)
    reports = {}
    for slug, out in exports.items():
        extra = ExtraInputs(maps=run.path / "maps" if slug == "run-clickme" else None,
                            manifest=manifest.with_suffix(".csv"))
        reports[slug] = build_report(load_export(out), run.path / "analysis" / slug, extra, opt,
                                     ["report", "--export", str(out)])
    return reports


def realfake_recovery(trials: pd.DataFrame, dprime_true: float, n_boot: int,
                      seed: int) -> tuple[dict, pd.DataFrame]:
    """The observers' d' as the analysis recovers it from the real-or-fake export's trials (with
    its bootstrap CI and accuracy, beside the simulated d'), and d' per model."""
    jt = judgments.judgment_trials(trials)
    overall = judgments.sdt_table(jt, by=[], n_boot=n_boot, seed=seed).iloc[0]
    by_model = judgments.sdt_table(jt, by=["model"], n_boot=n_boot, seed=seed)
    summary = {"dprime_true": dprime_true, "dprime": float(overall["dprime"]),
               "dprime_lo": float(overall.get("dprime_lo", np.nan)),
               "dprime_hi": float(overall.get("dprime_hi", np.nan)),
               "accuracy": float(overall["accuracy"]), "n_trials": int(len(jt))}
    return summary, by_model


def clickme_recovery(click: Export, stim: stages.Stimuli) -> tuple[maps.ImageMaps, np.ndarray]:
    """The human map of each ClickMe image with >= 2 participants, unblurred, and its Spearman
    correlation with the clickers' known map (the image's ink)."""
    size = int(stim.table["width"].iloc[0])
    hm = maps.image_maps(click.trials, click.clicks, (size, size), min_clicks=1, min_subjects=2, blur="none")
    return hm, maps.rowwise_spearman(hm.maps, _ink_maps(stim, hm.stimulus_ids))


def maps_to_show(ids: Sequence[str], model_maps: dict[str, dict[str, np.ndarray]], n: int = 6) -> list[str]:
    """The first n images (in `ids` order) that every model-map method has a map of."""
    return [s for s in ids if all(s in m for m in model_maps.values())][:n]


def method_order(model_maps: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """The model-map methods in modelmaps.METHODS order, any others after them by name."""
    return [m for m in modelmaps.METHODS if m in model_maps] + sorted(set(model_maps) - set(modelmaps.METHODS))


def clickme_maps_figure(hm: maps.ImageMaps, model_maps: dict[str, dict[str, np.ndarray]],
                        stim: stages.Stimuli) -> Figure:
    """Blurred human maps of a few images beside every method's model maps and the images' ink."""
    show = maps_to_show(hm.stimulus_ids, model_maps)
    pos_h = {s: i for i, s in enumerate(hm.stimulus_ids)}
    human = maps.blur_maps(hm.maps[[pos_h[s] for s in show]], "disc")
    return afigures.maps_side_by_side(
        human, {k: np.stack([model_maps[k][s] for s in show]) for k in method_order(model_maps)}, show,
        images=_ink_maps(stim, np.array(show)))


def read_alignment(analysis_dir: Path) -> pd.DataFrame | None:
    """The ClickMe report's human-vs-model alignment table, None when the report made none."""
    path = analysis_dir / "run-clickme" / "tables" / "alignment_by_method.csv"
    return pd.read_csv(path) if path.exists() else None


def study_report(profile_name: str, seed: int, metrics: dict, by_model: pd.DataFrame, known_text: list[str],
                 align: pd.DataFrame | None, run_path: Path) -> list[str]:
    """The run's report.md, as markdown pieces, from its metrics and tables."""
    sims, counts, rf_line = metrics["simulation"], metrics["export_rows"], metrics["realfake"]
    report = [
        f"# study run ({profile_name} profile, seed {seed})\n",
        "Two live studies served by granian on 127.0.0.1 (SQLite), done by simulated "
        "participants over the real HTTP API, exported and analysed.\n",
        "## Simulated participants\n",
        md_table([{"study": k, **{c: v[c] for c in ("participants", "completed", "sent", "confirmed", "errors",
                                                      "p50_ms", "p99_ms")}} for k, v in sims.items()]),
        "\n## Export rows\n", md_table([{"study": k, **v} for k, v in counts.items()]),
        "\n## Real-or-fake: the analysis recovers the observers' d'\n",
        f"Observers simulated with d' = {rf_line['dprime_true']:g}; recovered d' = {rf_line['dprime']:.2f} "
        f"(95% CI {rf_line['dprime_lo']:.2f} to {rf_line['dprime_hi']:.2f}), accuracy {rf_line['accuracy']:.2f} "
        f"over {rf_line['n_trials']} trials.\n\n",
        md_table(by_model[[c for c in ("model", "n_signal", "hits", "dprime", "dprime_lo", "dprime_hi", "hype_inf")
                           if c in by_model.columns]].to_dict("records")),
        "\n## ClickMe: human maps come back as the clickers' known map (the ink)\n",
        f"{metrics['clickme']['n_images_with_map']} images with >= 2 participants; mean Spearman(human map, ink) = "
        f"{metrics['clickme']['mean_spearman_human_map_vs_ink']:.2f}.\n",
    ]
    report += known_text
    if align is not None:
        cols = [c for c in ("method", "n_images", "spearman", "alignment_ceiling_normalised",
                            "alignment_ceiling_normalised_lo", "alignment_ceiling_normalised_hi",
                            "alignment_sb_corrected", "alignment_sb_corrected_lo", "alignment_sb_corrected_hi")
                if c in align]
        report += ["\n## Human vs model map alignment (analysis report)\n",
                   "Mean Spearman over images divided by the human maps' split-half ceiling (as Harmonization "
                   "reports it; a perfect model scores above 1 because the ceiling correlates two half-samples), "
                   "and divided by the square root of the Spearman-Brown full-sample reliability (a perfect "
                   "model scores about 1); CIs resample images and recompute the ceiling with them.\n\n",
                   md_table(align[cols].to_dict("records"))]
    report += ["\n## Figures\n", "- `figures/realfake_by_model.png`: d' and error rate per model (95% CI)\n"
               "- `figures/clickme_maps.png`: human ClickMe maps (blurred) beside the model maps "
               "(`guidance_difference` is the diffusion model's map that carries image structure; "
               "`diffusion_score_noised` is the seed papers' score, dominated by its noise draws in "
               "pixel space)\n"]
    report += ["\n## Reports\n"] + [f"- `{Path(v).relative_to(run_path)}`\n" for v in metrics["reports"].values()]
    return report


def run_study(run: RunDir, device: torch.device, progress: bool = True) -> Path:
    """The study pipeline into the run folder: the shared stages, two live studies done by
    simulated participants over HTTP, their exports, model maps of the ClickMe stimuli, the
    analysis reports, and checks that the analysis recovers the simulated ground truth."""
    profile, log, seed = run.profile, run.log, run.seed
    cfg = profile.section("study")
    ckpts, manifest, stim, _train, heldout, split = stages.shared_inputs(profile, run.cache, seed, device, log, progress)
    feedback_ckpt = stages.train_feedback(profile, heldout, run.cache, seed, device, log)

    trials, n_click, n_rf = image_counts(cfg)
    plans = studies.study_plans(manifest, trials, n_click, n_rf, seed, prefix="run",
                                feedback_classifier=feedback_ckpt)
    site_dir = run.path / "site"
    env, site, created = build_site(site_dir, plans, manifest, feedback_ckpt)
    log.info("studies %s created live in %s", ", ".join(created), site_dir)
    behaviours = simulated_participants(cfg, seed)
    sims = run_participants(env, site, behaviours, cfg["workers"], run.path / "server.log", log)
    exports = {slug: run.path / "exports" / slug for slug in behaviours}
    counts = {slug: site.export(slug, out) for slug, out in exports.items()}

    click = load_export(exports["run-clickme"])
    methods = clickme_model_maps(run.path / "maps", stim, sorted(click.trials["stimulus_id"].unique()), heldout,
                                 split, ckpts, feedback_ckpt, device, seed)
    reports = analysis_reports(run, exports, manifest, cfg, seed)

    realfake, by_model = realfake_recovery(load_export(exports["run-realfake"]).trials, cfg["observer_dprime"],
                                           cfg["n_boot"], seed)
    hm, rho_ink = clickme_recovery(click, stim)
    align = read_alignment(run.path / "analysis")
    model_maps = load_maps(run.path / "maps")
    known_rows, known_text = known_map_check(model_maps, stim, cfg["n_boot"], seed)
    run.save_figure("realfake_by_model", afigures.judgment_figure(by_model, ["model"]))
    run.save_figure("clickme_maps", clickme_maps_figure(hm, model_maps, stim))

    run.metrics.update({
        "simulation": sims, "export_rows": counts,
        "realfake": realfake,
        "realfake_by_model": by_model.to_dict("records"),
        "clickme": {"n_images_with_map": int(len(hm.stimulus_ids)),
                    "mean_spearman_human_map_vs_ink": float(np.nanmean(rho_ink))},
        "model_map_methods": methods,
        "model_maps_vs_known_map": known_rows,
        "alignment": align.to_dict("records") if align is not None else None,
        "reports": {k: str(v) for k, v in reports.items()},
    })
    (run.path / "studies.json").write_text(json.dumps({p.slug: p.definition for p in plans}, indent=2, default=str))
    return run.finish(markdown(study_report(profile.name, seed, run.metrics, by_model, known_text, align, run.path)))
