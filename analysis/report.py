"""The analysis report: one self-contained HTML file plus a CSV for every table in it.

`build_report` composes the statistics of this package on an export (and optional model maps,
encoder features, one-shot critic answers and classifier decisions) and writes
OUT/report.html (figures as base64 PNG) and OUT/tables/*.csv.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import agreement, alignment, figures, generalization, judgments, maps, qc, realfake
from analysis.load import (
    AnalysisInputError,
    Export,
    load_maps,
    map_sources,
    read_table,
    sha256_file,
    stimuli_table,
)
from analysis.staircase import StaircaseRule

PACKAGES = ("numpy", "scipy", "pandas", "pyarrow", "statsmodels", "scikit-learn", "matplotlib")


@dataclass
class ReportOptions:
    """Settings of one report run (all recorded in the report)."""

    grid: int | None = None
    min_clicks: int = 1
    min_subjects: int = 2
    blur: str = "disc"
    n_boot: int = 1000
    ceiling_repeats: int = 50
    mixed_max_trials: int = 10000
    seed: int = 0
    exclude: bool = True
    qc_rules: qc.QCRules = field(default_factory=qc.QCRules)
    # the study's staircase settings, replacing those the export records (None: the
    # recorded ones, else the study app's defaults)
    staircase: StaircaseRule | None = None


@dataclass
class ExtraInputs:
    """Optional inputs beside the export, each a path or None."""

    maps: Path | None = None
    features: Path | None = None
    critic: Path | None = None
    classifier: Path | None = None
    manifest: Path | None = None


class _Writer:
    """Collects HTML sections, writes each table as CSV and embeds each figure."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tables_dir = out / "tables"
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        self.parts: list[str] = []
        self.tables: list[str] = []
        self.n_figures = 0

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, name: str, df: pd.DataFrame, caption: str, show: bool = True,
              max_rows: int = 60) -> None:
        df.to_csv(self.tables_dir / f"{name}.csv", index=False)
        self.tables.append(name)
        cap = f"{caption} (tables/{name}.csv, {len(df)} rows)"
        if not show:
            self.parts.append(f"<p class='note'>{html.escape(cap)}: in the CSV only.</p>")
            return
        shown = df.head(max_rows)
        body = shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="",
                             border=0, classes="tbl")
        more = f" (first {max_rows} shown)" if len(df) > max_rows else ""
        self.parts.append(f"<figure><figcaption>{html.escape(cap + more)}</figcaption>{body}"
                          "</figure>")

    def figure(self, name: str, fig, caption: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        self.n_figures += 1
        self.parts.append(
            f"<figure id='fig-{name}'><img alt='{html.escape(name)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}"
            "</figcaption></figure>")

    def write(self, title: str) -> Path:
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
                 ".tbl{border-collapse:collapse;font-size:12px}.tbl td,.tbl th{padding:2px 6px;"
                 "border-bottom:1px solid #ddd;text-align:right}figure{margin:1em 0;overflow-x:auto}"
                 "figcaption{font-size:12px;color:#555}.note{font-size:12px;color:#555}")
        doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
               f"</title><style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
               + "\n".join(self.parts) + "</body></html>")
        path = self.out / "report.html"
        tmp = self.out / ".report.html.tmp"
        tmp.write_text(doc, encoding="utf-8")
        os.replace(tmp, path)  # a reader never sees a half-written report
        return path


def remove_outputs(out: Path) -> None:
    """Delete OUT/report.html and OUT/tables/*.csv, so that a run that fails leaves no report
    or table from an earlier run to be mistaken for its own."""
    out = Path(out)
    for path in (out / "report.html", out / ".report.html.tmp"):
        path.unlink(missing_ok=True)
    if (out / "tables").is_dir():
        for path in (out / "tables").glob("*.csv"):
            path.unlink()


def package_versions() -> pd.DataFrame:
    """Python and the analysis's package versions."""
    rows = [{"package": "python", "version": platform.python_version()}]
    for name in PACKAGES:
        try:
            rows.append({"package": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            rows.append({"package": name, "version": "not installed"})
    return pd.DataFrame(rows)


def read_features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Encoder features: .npz with `stimulus_id` (n,) and `features` (n, d), or a CSV/Parquet
    table with a stimulus_id column and one numeric column per dimension."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            for key in ("stimulus_id", "features"):
                if key not in z:
                    raise AnalysisInputError(f"{path}: missing array {key}")
            ids, feats = z["stimulus_id"].astype(str), z["features"].astype(np.float64)
    else:
        df = read_table(path)
        if "stimulus_id" not in df.columns:
            raise AnalysisInputError(f"{path}: missing column stimulus_id")
        ids = df["stimulus_id"].astype(str).to_numpy()
        try:
            feats = df.drop(columns="stimulus_id").to_numpy(np.float64)
        except ValueError as exc:
            raise AnalysisInputError(f"{path}: feature columns must be numeric ({exc})") from exc
    if feats.ndim != 2 or len(feats) != len(ids):
        raise AnalysisInputError(f"{path}: features must be (n, d) with one row per stimulus_id")
    return ids, feats


def _read_checked(path: Path, required: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise AnalysisInputError(f"missing file {path}")
    df = read_table(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise AnalysisInputError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def _metadata(export: Export, manifest: Path | None) -> pd.DataFrame:
    stim = stimuli_table(export.trials)
    if manifest is None:
        return stim
    cols = ["stimulus_id", "source", "model", "class_label", "exemplar_id", "guidance"]
    man = _read_checked(manifest, cols)[cols].copy()
    man["guidance"] = pd.to_numeric(man["guidance"], errors="coerce")
    for c in ("stimulus_id", "source", "model", "class_label", "exemplar_id"):
        man[c] = man[c].astype("string").fillna("").astype(str)
    return pd.concat([man, stim[cols]]).drop_duplicates("stimulus_id").reset_index(drop=True)


def _judgment_sections(w: _Writer, trials: pd.DataFrame, opt: ReportOptions,
                       recorded: dict[tuple[str, str], StaircaseRule | None]) -> None:
    rt = judgments.judgment_trials(trials)
    w.heading("Real-or-fake judgments")
    if rt.empty:
        w.text("No real-or-fake main trials in the export.")
        return
    w.text(f"{len(rt)} main trials from {rt['participant'].nunique()} participants on "
           f"{rt['stimulus_id'].nunique()} stimuli. Fake is the signal; d' and c use the "
           "log-linear correction; 95% CIs from a two-way bootstrap over participants and "
           f"stimuli ({opt.n_boot} resamples; stimuli drawn within their source, model, "
           "guidance and class, so no group loses its reals or fakes). dprime (= "
           "dprime_pooled) comes from the trials pooled over participants; "
           "dprime_mean_participant is the mean of each participant's own d', which pooling "
           "does not lower when participants' criteria differ. hype_inf is HYPE-infinity: "
           "the mean of the error rate on fakes and the error rate on reals. A group without "
           "reals or without fakes has no d' (NaN, see its note).")
    absent = [name for src, name in (("model", "fake (model)"), ("real", "real"))
              if not (rt["source"] == src).any()]
    if absent:
        w.text(f"These trials show no {' and no '.join(absent)} stimuli. H, F, d', c, the "
               "HYPE error rates, the per-model, per-class and exposure tables, the staircase "
               "and the mixed model all compare answers to fakes with answers to reals, so "
               "none is computed; only the accuracy below.")
        w.table("judgments_accuracy", rt.groupby("source", as_index=False).agg(
            n_trials=("correct", "size"), n_participants=("participant", "nunique"),
            accuracy=("correct", "mean")), "Accuracy per stimulus source")
        return
    both = ("participant", "stimulus")
    overall = judgments.sdt_table(rt, [], resample=both, n_boot=opt.n_boot, seed=opt.seed)
    w.table("judgments_overall", overall, "Overall accuracy, H, F, d', c, error rates")
    by_model = judgments.sdt_table(rt, ["model"], resample=both, n_boot=opt.n_boot,
                                   seed=opt.seed)
    w.table("judgments_by_model", by_model, "Per model (fakes of the model vs all reals)")
    w.figure("judgments", figures.judgment_figure(by_model, ["model"]),
             "d' and HYPE-infinity error rate per model (data: judgments_by_model.csv)")
    fakes = rt.loc[realfake.is_fake(rt["source"])]
    if fakes["guidance"].notna().any():
        t = judgments.sdt_table(rt, ["model", "guidance"], resample=both, n_boot=opt.n_boot,
                                seed=opt.seed)
        w.table("judgments_by_model_guidance", t, "Per model and guidance scale")
    t = judgments.sdt_table(rt, ["class_label"], resample=both, n_boot=opt.n_boot,
                            seed=opt.seed)
    w.table("judgments_by_class", t, "Per class (fakes vs reals of the class)")
    acc = judgments.accuracy_by_exposure(rt)
    if rt["exposure_ms"].nunique() > 1:
        w.table("accuracy_by_exposure", acc, "Accuracy per exposure bin of 100 ms")
        w.figure("exposure", figures.exposure_figure(acc),
                 "Accuracy against exposure time (data: accuracy_by_exposure.csv)")
    thr = judgments.staircase_thresholds(rt, opt.staircase, recorded)
    if len(thr):
        origin = {"given": "given with --staircase",
                  "recorded": "recorded in the export",
                  "default": "the study app's defaults: the export records no staircase "
                             "settings"}
        used = thr.drop_duplicates(["condition", "rule", "rule_from"]).sort_values("condition")
        w.text("Staircase thresholds replay each participant's answers through the study "
               "app's staircase rule with the settings "
               + "; ".join(f"{r.rule} ({origin[r.rule_from]}) in condition "
                           f"{r.condition or '(none)'}" for r in used.itertuples())
               + "; threshold = mean of the last n_reversals_threshold reversals.")
        if (thr["note"] != "").any():
            w.text(f"For {(thr['note'] != '').sum()} of {len(thr)} participants these settings "
                   "do not reproduce the exported exposures, so they get no threshold: pass "
                   "the study's staircase settings with --staircase.")
        w.table("staircase_thresholds", thr, "HYPE-time: per participant staircase threshold",
                show=False)
        w.table("staircase_summary", judgments.summarise_thresholds(thr, opt.n_boot, opt.seed),
                "HYPE-time: mean threshold per condition (95% CI over participants)")
    sub = rt
    if len(rt) > opt.mixed_max_trials:  # whole participants, so the crossed design stays dense
        parts = rt["participant"].drop_duplicates().sample(frac=1.0, random_state=opt.seed)
        n_of = rt.groupby("participant").size().reindex(parts)
        keep = parts[(n_of.cumsum() <= opt.mixed_max_trials).to_numpy()]
        sub = rt.loc[rt["participant"].isin(keep)]
    if sub["participant"].nunique() > 1 and sub["stimulus_id"].nunique() > 1 and sub[
            "source"].nunique() > 1:
        # scipy's default L-BFGS-B tolerances: estimates within ~1e-3 of the tight fit, in a
        # fraction of its time (far below the standard errors)
        sub = sub.assign(model=sub["model"].where(realfake.is_fake(sub["source"]), "real"))
        res = judgments.mixed_logit(sub, ["model"], minim_opts={}, reference={"model": "real"})
        w.text(f"Mixed-effects logistic model of correct ~ model (reals as the base level) "
               f"with crossed random "
               f"intercepts (participant, stimulus), statsmodels BinomialBayesMixedGLM "
               f"(variational Bayes) on {res.n_trials} trials"
               + (f" (all trials of {sub['participant'].nunique()} randomly drawn participants)."
                  if len(sub) < len(rt) else ".")
               + " Standard errors and 95% CIs of the fixed effects from the Laplace "
               "approximation (se_laplace, lo, hi); vb_sd, the variational posterior SD, is "
               "2-3 times too small to serve as a standard error.")
        w.table("mixed_logit_fixed", res.fixed,
                "Fixed effects (logit scale): posterior mean, Laplace SE and 95% CI, VB SD")
        w.table("mixed_logit_random", res.random, "Random-intercept SDs")


def _map_sections(w: _Writer, trials: pd.DataFrame, clicks: pd.DataFrame,
                  model_maps: dict[str, dict[str, np.ndarray]] | None, stim: pd.DataFrame,
                  opt: ReportOptions) -> None:
    ck = trials.loc[(trials["task"] == "clickme") & (trials["trial_kind"] == "main")]
    w.heading("Importance maps (ClickMe)")
    if ck.empty or clicks.empty:
        w.text("No ClickMe main trials with clicks in the export.")
        return
    if opt.grid:
        shape = (opt.grid, opt.grid)
    elif model_maps:
        first = next(iter(next(iter(model_maps.values())).values()))
        shape = first.shape
    else:
        shape = (32, 32)
    idx = maps.click_index(ck, clicks, shape, opt.min_clicks, opt.min_subjects)
    if len(idx.stimulus_ids) == 0:
        w.text(f"No image has {opt.min_subjects} participants with {opt.min_clicks} clicks.")
        return
    human = maps.blur_maps(maps.mean_maps(idx), opt.blur)
    n_sub = np.bincount(idx.trial_image, minlength=len(idx.stimulus_ids))
    w.text(f"{len(idx.trial_image)} trials kept on {len(idx.stimulus_ids)} images, grid "
           f"{shape[0]}x{shape[1]}, blur {opt.blur} (disc diameter "
           f"{maps.disc_diameter(shape[1])} px, applied twice), min_clicks {opt.min_clicks}, "
           f"min_subjects {opt.min_subjects}.")
    single = int((n_sub < 2).sum())
    if single == len(n_sub):
        w.text("Split-half noise ceiling not computed: it splits an image's participants into "
               "two halves, so it needs at least 2 participants on an image, and every image "
               "here has 1 (min_subjects 1). The alignment below is therefore not normalised.")
        per_image_ceiling = pd.Series(np.nan, index=idx.stimulus_ids)
    else:
        if single:
            w.text(f"{single} of {len(n_sub)} images have a single participant: the split-half "
                   "ceiling needs at least 2, so these images have no ceiling and are left out "
                   "of the ceiling and of the normalised alignment (not of the raw metrics).")
        ceiling = maps.split_half_ceiling(idx, opt.ceiling_repeats, opt.seed, opt.blur)
        w.table("noise_ceiling", pd.DataFrame([{
            "ceiling": ceiling.ceiling, "ceiling_sb": ceiling.ceiling_sb,
            "floor": ceiling.floor, "n_images": len(idx.stimulus_ids),
            "n_images_ceiling": len(n_sub) - single, "repeats": ceiling.n_repeats}]),
            "Split-half noise ceiling and floor (Spearman); ceiling_sb: the ceiling stepped "
            "up to all participants (Spearman-Brown, 2r / (1 + r))")
        w.table("noise_ceiling_per_image", pd.DataFrame({
            "stimulus_id": idx.stimulus_ids, "n_subjects": n_sub,
            "ceiling": ceiling.per_image_ceiling, "floor": ceiling.per_image_floor}),
            "Per-image split-half ceiling", show=False)
        per_image_ceiling = pd.Series(ceiling.per_image_ceiling, index=idx.stimulus_ids)
    if not model_maps:
        w.text("No model maps given (--maps): alignment not computed.")
        return
    per = alignment.align_methods(human, idx.stimulus_ids, model_maps)
    if per.empty:
        w.text("The model maps share no stimulus with the human maps.")
        return
    per = per.merge(stim[["stimulus_id", "model"]], on="stimulus_id", how="left")
    per["model"] = per["model"].fillna("").replace("", "real")
    w.table("alignment_per_image", per, "Per image and method", show=False)
    summ = alignment.summarise_alignment(per, per_image_ceiling, ["method"], opt.n_boot,
                                         opt.seed)
    w.text("Alignment is the mean Spearman between the model map and the human map divided by "
           "a noise ceiling computed on the same images. alignment_ceiling_normalised (also "
           "`alignment`) divides by the split-half ceiling, as the Harmonization benchmark "
           "does; it can exceed 1, because the ceiling correlates two half-samples of the "
           "participants while the model is compared with the map of all of them, which is "
           "less noisy (in simulations the true map scores 1.2-2 on it, more with fewer "
           "participants). alignment_sb_corrected divides by sqrt(ceiling_sb), the Spearman "
           "the true map is expected to reach with the full-sample human map (ceiling_sb is "
           "the Spearman-Brown step-up 2r / (1 + r) of the split-half r); the true map scores "
           "about 1 on it whatever the number of participants. 95% CIs resample images and "
           "recompute the ceiling on each resample, so they include the ceiling's uncertainty.")
    w.table("alignment_by_method", summ, "Alignment per method (95% CI over images)")
    w.figure("alignment", figures.alignment_figure(summ),
             "Mean Spearman / noise ceiling per method (data: alignment_by_method.csv)")
    summ2 = alignment.summarise_alignment(per, per_image_ceiling, ["method", "model"],
                                          opt.n_boot, opt.seed)
    w.table("alignment_by_method_model", summ2, "Alignment per method and generating model")
    ids = [s for s in idx.stimulus_ids if all(s in m for m in model_maps.values())][:6]
    if ids:
        pos = {s: i for i, s in enumerate(idx.stimulus_ids)}
        mm = {k: np.stack([maps.resize_map(v[s], shape) for s in ids]) for k, v in
              model_maps.items()}
        w.figure("maps", figures.maps_side_by_side(human[[pos[s] for s in ids]], mm, ids),
                 "Human (blurred) and model (unblurred) maps for the same images")


def _agreement_section(w: _Writer, trials: pd.DataFrame, path: Path, opt: ReportOptions) -> None:
    w.heading("Humans and classifiers")
    preds = _read_checked(path, ["classifier", "stimulus_id", "answer"])
    bad = ~preds["answer"].isin(["real", "fake"])
    if bad.any():
        raise AnalysisInputError(f"{path}: column answer must be real or fake")
    rt = judgments.judgment_trials(trials)
    per, summ = agreement.human_vs_classifier(rt, preds, opt.n_boot, opt.seed)
    if summ.empty:
        w.text("The classifier decisions share no stimulus with the real-or-fake trials.")
        return
    w.text("Error consistency (Geirhos et al. 2020) asks whether humans and a classifier err on "
           "the same stimuli beyond what their accuracies predict: c_obs is the share of trials "
           "both got right or both got wrong, c_exp = p1 p2 + (1 - p1)(1 - p2) the share "
           "expected by chance, kappa_e = (c_obs - c_exp) / (1 - c_exp): 0 for independent "
           "errors, 1 for identical ones. kappa_e is computed per participant and averaged; "
           "a participant who never disagreed with the classifier (c_obs = 1, e.g. both always "
           "right) counts as 1, as in model-vs-human (n_no_disagreement counts them). The 95% "
           f"CI resamples participants and stimuli ({opt.n_boot} resamples), since the "
           "classifier's correctness is fixed per stimulus and shared by all participants; "
           "in simulations it covers the true value slightly more often than 95%.")
    w.table("agreement", summ, "Accuracy, Cohen's kappa and error consistency per classifier")
    w.table("agreement_per_stimulus", per, "Per stimulus", show=False)
    w.figure("agreement", figures.agreement_figure(per),
             "Human accuracy per stimulus by classifier correctness "
             "(data: agreement_per_stimulus.csv)")


def _generalization_section(w: _Writer, stim: pd.DataFrame, critic: Path | None,
                            features: Path | None, opt: ReportOptions) -> None:
    w.heading("Generalization and sample quality")
    feats = None
    if features is not None:
        ids, f = read_features(features)
        feats = pd.DataFrame(f, index=pd.Index(ids, name="stimulus_id"))
        feats = feats[~feats.index.duplicated()]
    if critic is not None:
        crit = _read_checked(critic, ["stimulus_id"])
        if "correct" not in crit.columns and "predicted_label" not in crit.columns:
            raise AnalysisInputError(f"{critic}: needs a column correct or predicted_label")
        crit = crit.merge(stim, on="stimulus_id", how="left", suffixes=("", "_stim"))
        if "correct" not in crit.columns:
            crit["correct"] = (crit["predicted_label"].astype(str) == crit["class_label"]).astype(
                float)
        crit["correct"] = pd.to_numeric(crit["correct"], errors="coerce")
        crit = crit.loc[crit["correct"].notna() & crit["source"].notna()].copy()
        crit["model"] = np.where(crit["source"] == "real", "human", crit["model"])
        crit["guidance"] = crit["guidance"].where(crit["model"] != "human")
        rec = crit.groupby(["model", "guidance"], dropna=False, sort=True).agg(
            n=("correct", "size"), recognizability=("correct", "mean")).reset_index()
        w.table("recognizability", rec, "One-shot critic accuracy per model and guidance")
        if feats is not None:
            has = crit["stimulus_id"].isin(feats.index) & crit["exemplar_id"].isin(feats.index)
            g = crit.loc[has].reset_index(drop=True)
            if len(g):
                g["originality"] = generalization.originality(
                    feats.loc[g["stimulus_id"]].to_numpy(), feats.loc[g["exemplar_id"]].to_numpy())
                curves = generalization.generalization_curve(g, ["model", "guidance"])
                w.table("generalization_curves", curves,
                        "Recognizability per originality bin (10 bins per class)")
                w.figure("generalization", figures.generalization_figure(curves, ["model", "guidance"]),
                         "Generalization curves; humans' drawings dashed (data: "
                         "generalization_curves.csv)")
                pts = generalization.diversity_recognizability(
                    g, feats.loc[g["stimulus_id"]].to_numpy(), ["model", "guidance"])
                w.table("diversity_recognizability", pts, "Diversity and recognizability per class")
                w.figure("diversity", figures.diversity_recognizability_figure(
                    pts, ["model", "guidance"]),
                    "Diversity vs recognizability (data: diversity_recognizability.csv)")
            else:
                w.text("No critic row has features for both the sample and its exemplar.")
    if feats is not None:
        _quality_tables(w, stim, feats, opt)


def _quality_tables(w: _Writer, stim: pd.DataFrame, feats: pd.DataFrame,
                    opt: ReportOptions) -> None:
    s = stim.loc[stim["stimulus_id"].isin(feats.index)]
    reals = feats.loc[s.loc[s["source"] == "real", "stimulus_id"]].to_numpy()
    fakes = s.loc[s["source"] == "model"]
    if len(reals) < 2 or fakes.empty:
        w.text("Sample quality needs features of at least 2 real and some model stimuli.")
        return
    groups = list(fakes.groupby(["model", "guidance"], dropna=False, sort=True))
    n_eq = min([len(reals)] + [len(g) for _, g in groups])
    rows = []
    for (model, guidance), g in groups:  # one row per model and guidance scale
        x = feats.loc[g["stimulus_id"]].to_numpy()
        row = {"model": model, "guidance": guidance, "n": len(x), "n_equal": n_eq}
        rng = np.random.default_rng(opt.seed)
        row["fd"] = generalization.frechet_distance(x, reals) if len(x) > 1 else np.nan
        row["fd_equal_n"] = generalization.frechet_distance(
            x[rng.choice(len(x), n_eq, replace=False)], reals) if n_eq > 1 else np.nan
        row["kid"], row["kid_sd"] = generalization.kid(x, reals, 1000, 50, opt.seed) if min(
            len(x), len(reals)) > 1 else (np.nan, np.nan)
        try:
            row["fd_inf"] = generalization.fd_infinity(x, reals, seed=opt.seed)["fd_inf"]
        except ValueError:
            row["fd_inf"] = np.nan
        rows.append(row)
    w.table("sample_quality", pd.DataFrame(rows),
            "Frechet distance (all samples and at equal N), KID and FD-infinity against the "
            "real stimuli in the encoder's feature space")


def build_report(export: Export, out: Path, extra: ExtraInputs | None = None,
                 opt: ReportOptions | None = None, argv: list[str] | None = None) -> Path:
    """Run every analysis the inputs allow and write OUT/report.html and OUT/tables/*.csv.

    The outputs of an earlier run are deleted first, and this run's are deleted if it fails:
    after a failure OUT holds no report.html and no table."""
    out = Path(out)
    remove_outputs(out)
    try:
        return _build(export, out, extra or ExtraInputs(), opt or ReportOptions(), argv)
    except BaseException:
        remove_outputs(out)
        raise


def _build(export: Export, out: Path, extra: ExtraInputs, opt: ReportOptions,
           argv: list[str] | None) -> Path:
    w = _Writer(out)
    model_maps = load_maps(extra.maps) if extra.maps else None
    stim = _metadata(export, extra.manifest)

    w.heading("Inputs")
    w.text("Command: " + " ".join(["python -m analysis", *(argv or [])]) + "  |  written "
           + dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    sources = dict(export.sources)
    for p in (extra.features, extra.critic, extra.classifier, extra.manifest):
        if p is not None:
            if not Path(p).exists():
                raise AnalysisInputError(f"missing file {p}")
            sources[str(p)] = sha256_file(Path(p))
    if extra.maps:
        sources.update(map_sources(extra.maps))
    w.table("inputs", pd.DataFrame({"path": list(sources), "sha256": list(sources.values())}),
            "Input files and their SHA-256")
    if export.repairs:
        w.text("Repairs made when loading the export (docs/formats.md §3): "
               + "; ".join(export.repairs) + ".")
    w.table("load_repairs", pd.DataFrame({"repair": export.repairs}, dtype=str),
            "Repairs made when loading the export (none when empty)", show=False)
    w.table("versions", package_versions(), f"Package versions ({sys.executable})")
    w.table("options", pd.DataFrame([{k: str(v) for k, v in vars(opt).items()}]), "Options")

    w.heading("Quality control")
    flags = qc.flag_participants(export.trials, export.events, opt.qc_rules)
    w.table("qc_summary", qc.qc_summary(flags), "Participants flagged per rule")
    w.table("qc_participants", flags, "Per participant", show=False)
    excluded = set(flags.loc[flags["excluded"], "participant"]) if opt.exclude else set()
    w.text(f"{len(excluded)} of {len(flags)} participants excluded"
           + ("" if opt.exclude else " (exclusion switched off)") + ".")
    trials = export.trials.loc[~export.trials["participant"].isin(excluded)]
    clicks = export.clicks.loc[~export.clicks["participant"].isin(excluded)]

    _judgment_sections(w, trials, opt, export.staircase)
    _map_sections(w, trials, clicks, model_maps, stim, opt)
    if extra.classifier is not None:
        _agreement_section(w, trials, Path(extra.classifier), opt)
    if extra.critic is not None or extra.features is not None:
        _generalization_section(w, stim, extra.critic, extra.features, opt)
    study = ", ".join(sorted(export.trials["study"].unique())) or "(empty)"
    return w.write(f"diffusion-psychophysics analysis: {study}")
