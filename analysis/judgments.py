"""Real-or-fake judgments: signal detection, HYPE error rates, staircase thresholds, mixed logit.

"fake" is the signal: H = P(say fake | fake), F = P(say fake | real). Counts are summed with
groupby/bincount and sparse matrix products; bootstrap resamples are weight matrices (or, for
trials resampled within a participant, binomial draws), so no Python loop runs per trial or
per resample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.linalg import splu
from scipy.special import ndtri
from scipy.stats import norm

from analysis import realfake, staircase
from analysis.stats import resample_weights

COUNTS = ("hits", "n_signal", "false_alarms", "n_noise")
RESAMPLE_UNITS = ("participant", "stimulus")
# statistics of pooled counts, then those averaged over participants; each gets _lo/_hi
POOLED_STATS = ("H", "F", "dprime", "criterion", "dprime_pooled", "criterion_pooled")
PARTICIPANT_STATS = ("dprime_mean_participant", "criterion_mean_participant")
RATE_STATS = ("accuracy", "error_fake", "error_real", "hype_inf")
_CHUNK = 2_000_000  # resamples x participants held at once in the two-way bootstrap
_Z_TABLE = 1024  # largest count + 1 for which _z looks z up in a table


def sdt(hits: np.ndarray, n_signal: np.ndarray, false_alarms: np.ndarray, n_noise: np.ndarray,
        correction: str = "loglinear") -> dict[str, np.ndarray]:
    """d' and criterion c from counts (any matching shapes).

    loglinear (Hautus 1995): H = (hits + 0.5) / (n_signal + 1), F likewise;
    none: raw rates (infinite d' at 0 or 1). d' = z(H) - z(F); c = -(z(H) + z(F)) / 2.
    With no signal trials H is undefined, with no noise trials F is: NaN, and so are d' and c
    (the correction adjusts an observed rate, it does not stand in for a missing one).
    Returns H, F (as used), dprime, criterion.
    """
    hits, n_signal = np.asarray(hits, float), np.asarray(n_signal, float)
    fa, n_noise = np.asarray(false_alarms, float), np.asarray(n_noise, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if correction == "loglinear":
            h, f = (hits + 0.5) / (n_signal + 1), (fa + 0.5) / (n_noise + 1)
        elif correction == "none":
            h, f = hits / n_signal, fa / n_noise
        else:
            raise ValueError(f"correction must be loglinear or none, not {correction!r}")
    h, f = np.where(n_signal > 0, h, np.nan), np.where(n_noise > 0, f, np.nan)
    zh, zf = ndtri(h), ndtri(f)  # the normal quantile, without norm.ppf's per-call checks
    with np.errstate(invalid="ignore"):
        return {"H": h, "F": f, "dprime": zh - zf, "criterion": -(zh + zf) / 2}


def judgment_trials(trials: pd.DataFrame, kinds: tuple[str, ...] = ("main",)) -> pd.DataFrame:
    """The real/fake trials that count: task realfake, trial_kind in `kinds`, answered."""
    keep = (trials["task"] == "realfake") & trials["trial_kind"].isin(kinds) & trials[
        "answer"].isin(["real", "fake"])
    return trials.loc[keep].reset_index(drop=True)


def stratified_resample_weights(strata: np.ndarray, n_boot: int, rng: np.random.Generator
                                ) -> np.ndarray:
    """(n_boot, n) bootstrap counts of n units, each drawn with replacement within its stratum.

    strata: (n,) integer code per unit. Every resample keeps each stratum's size, so a stratum
    (the reals of a class, say) is never emptied; with one stratum this is the plain bootstrap.
    """
    codes = pd.factorize(np.asarray(strata))[0]
    n = codes.size
    sizes = np.bincount(codes)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    members = np.argsort(codes, kind="stable")  # units of stratum k: members[start[k]:][:size]
    slot = np.floor(rng.random((n_boot, n)) * sizes[codes]).astype(np.int64)
    picks = members[start[codes] + np.minimum(slot, sizes[codes] - 1)]
    flat = (picks + (np.arange(n_boot) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _group_codes(df: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """(n,) group code per row and the (n_groups, len(by)) key table, NaN kept as a level."""
    if not by:
        return np.zeros(len(df), np.int64), pd.DataFrame(index=[0])
    grouped = df.groupby(by, dropna=False, sort=True)
    codes = grouped.ngroup().to_numpy(np.int64)
    keys = grouped.size().reset_index()[by]
    return codes, keys


@dataclass
class _Trials:
    """The trials of one sdt_table call as codes: (participant, stimulus, said fake, cell)
    for the signal trials (cell = group) and the noise trials (cell = noise key)."""

    keys: pd.DataFrame  # (n_groups, len(by))
    sig: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    noi: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    noise_of: np.ndarray  # (n_groups,) noise key of each group; -1: no reals match it
    n_keys: int
    n_p: int
    n_s: int


def _trials(rt: pd.DataFrame, by: list[str], noise_by: list[str], n_p: int, n_s: int) -> _Trials:
    signal = realfake.is_fake(rt["source"])
    yes = realfake.says_fake(rt["answer"]).astype(float)
    p, s = rt["_p"].to_numpy(), rt["_s"].to_numpy()
    if by and set(by) <= set(noise_by):  # the reals carry every key: a group may hold only reals
        codes, keys = _group_codes(rt, by)
        g = codes[signal]
    else:
        g, keys = _group_codes(rt.loc[signal], by)
    k, nkeys = _group_codes(rt.loc[~signal], noise_by)
    if noise_by:
        nk_of_g = keys[noise_by].merge(nkeys.reset_index(), on=noise_by, how="left")["index"]
        noise_of = nk_of_g.fillna(-1).to_numpy(np.int64)
    else:
        noise_of = np.zeros(len(keys), np.int64) if (~signal).any() else np.full(len(keys), -1)
    return _Trials(keys, (p[signal], s[signal], yes[signal], g),
                   (p[~signal], s[~signal], yes[~signal], k), noise_of,
                   len(nkeys) if (~signal).any() else 0, n_p, n_s)


def _by_participant(part: tuple[np.ndarray, ...], n_cells: int, n_p: int
                    ) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """(n_p, n_cells) sparse counts of 'fake' answers and of trials per participant and cell."""
    p, _, yes, cell = part
    shape = (n_p, n_cells)
    return (sparse.csr_matrix((yes, (p, cell)), shape=shape),
            sparse.csr_matrix((np.ones(len(p)), (p, cell)), shape=shape))


def _to_groups(noise: np.ndarray, noise_of: np.ndarray) -> np.ndarray:
    """Noise counts per key (axis 0) to counts per group; zeros for a group without reals."""
    if noise.shape[0] == 0:
        return np.zeros((len(noise_of),) + noise.shape[1:])
    out = noise[np.maximum(noise_of, 0)]
    out[noise_of < 0] = 0.0
    return out


def _pooled(hits, n_signal, fa, n_noise, correction: str) -> dict[str, np.ndarray]:
    """Statistics of pooled counts (any matching shapes)."""
    d = sdt(hits, n_signal, fa, n_noise, correction)
    with np.errstate(invalid="ignore", divide="ignore"):
        error_fake = np.where(n_signal > 0, 1 - hits / n_signal, np.nan)
        error_real = np.where(n_noise > 0, fa / n_noise, np.nan)
        errors = n_signal - hits + fa
        return {
            "H": 1 - error_fake, "F": error_real,
            "dprime": d["dprime"], "criterion": d["criterion"],
            "dprime_pooled": d["dprime"], "criterion_pooled": d["criterion"],
            "accuracy": 1 - errors / (n_signal + n_noise),
            "error_fake": error_fake, "error_real": error_real,
            # HYPE-infinity (Zhou et al. 2019): the balanced error, whatever the real:fake ratio
            "hype_inf": (error_fake + error_real) / 2,
        }


def _z(x: np.ndarray, n: np.ndarray, correction: str) -> np.ndarray:
    """z of the (corrected) rate x / n for integer-valued counts x <= n (bootstrap weights are
    counts); wherever n is 0 the value is arbitrary (the caller gives it no weight)."""
    if correction == "loglinear":
        top = int(n.max(initial=0)) + 1
        if top > _Z_TABLE:
            return ndtri((x + 0.5) / (n + 1.0))  # finite for every count, n = 0 included
        # counts are small integers: look z up in a table (ndtri is ~4x slower per element)
        table = ndtri((np.arange(top)[None, :] + 0.5) / (np.arange(top)[:, None] + 1.0))
        return np.take(table.ravel(), n.astype(np.intp) * top + x.astype(np.intp))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, ndtri(x / n), 0.0)  # +-inf at rates 0 and 1, as sdt gives


def _participant_mean(zh, ok_signal, zf, ok_noise, weight) -> dict[str, np.ndarray]:
    """Mean over participants (axis 0 of (n_p, m) arrays) of d' = zh - zf and
    c = -(zh + zf) / 2, weighted by how often each is drawn (`weight`), over those with signal
    and noise trials (ok_*). Returns (m,) arrays."""
    w = weight * (ok_signal & ok_noise)
    n = w.sum(axis=0)
    eq = "pm,pm->m"
    sh, sf = np.einsum(eq, w, zh), np.einsum(eq, w, zf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"dprime_mean_participant": (sh - sf) / n,
                "criterion_mean_participant": -(sh + sf) / (2 * n),
                "n_participants": n}


@dataclass
class _PerParticipant:
    """Sparse (n_p, n_groups) matrices: each participant's counts in each group (noise: the
    group's reals), and their d' and c where they judged both kinds (d, c), ok marking those."""

    hits: sparse.csr_matrix
    n_signal: sparse.csr_matrix
    false_alarms: sparse.csr_matrix
    n_noise: sparse.csr_matrix
    d: sparse.csr_matrix
    c: sparse.csr_matrix
    ok: sparse.csr_matrix


def _per_participant(t: _Trials, correction: str) -> _PerParticipant:
    hits, n_sig = _by_participant(t.sig, len(t.keys), t.n_p)
    fa, n_noi = _by_participant(t.noi, max(t.n_keys, 1), t.n_p)
    has_noise = sparse.diags((t.noise_of >= 0).astype(float))
    fa, n_noi = (m[:, np.maximum(t.noise_of, 0)] @ has_noise for m in (fa, n_noi))
    rows, cols = n_sig.nonzero()  # the (participant, group) pairs with fakes
    # (indexing a sparse matrix with empty arrays gives a sparse matrix, not an empty array)
    cell = [np.asarray(m[rows, cols]).ravel() if rows.size else np.zeros(0)
            for m in (hits, n_sig, fa, n_noi)]
    zh, zf = _z(cell[0], cell[1], correction), _z(cell[2], cell[3], correction)
    ok = cell[3] > 0
    shape = (t.n_p, len(t.keys))
    pairs = (rows[ok], cols[ok])
    return _PerParticipant(
        hits, n_sig, fa.tocsr(), n_noi.tocsr(),
        sparse.csr_matrix(((zh - zf)[ok], pairs), shape=shape),
        sparse.csr_matrix((-(zh + zf)[ok] / 2, pairs), shape=shape),
        sparse.csr_matrix((np.ones(ok.sum()), pairs), shape=shape))


def _point(t: _Trials, correction: str) -> dict[str, np.ndarray]:
    """Statistics of the data as observed: each (n_groups,)."""
    pp = _per_participant(t, correction)
    counts = [np.asarray(m.sum(axis=0)).ravel() for m in
              (pp.hits, pp.n_signal, pp.false_alarms, pp.n_noise)]
    out = _pooled(*counts, correction)
    n = np.asarray(pp.ok.sum(axis=0)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["dprime_mean_participant"] = np.asarray(pp.d.sum(axis=0)).ravel() / n
        out["criterion_mean_participant"] = np.asarray(pp.c.sum(axis=0)).ravel() / n
    out.update(hits=counts[0], n_signal=counts[1], false_alarms=counts[2], n_noise=counts[3],
               n_participants=n)
    return out


def _boot_participants(t: _Trials, wp: np.ndarray, correction: str) -> dict[str, np.ndarray]:
    """Participants resampled with weights wp (B, n_p): each statistic (B, n_groups)."""
    pp = _per_participant(t, correction)
    wpt = wp.T

    def drawn(m: sparse.csr_matrix) -> np.ndarray:  # (B, n_groups) sums over the draws
        return np.asarray(m.T @ wpt).T

    counts = [drawn(m) for m in (pp.hits, pp.n_signal, pp.false_alarms, pp.n_noise)]
    out = _pooled(*counts, correction)
    n = drawn(pp.ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["dprime_mean_participant"] = drawn(pp.d) / n
        out["criterion_mean_participant"] = drawn(pp.c) / n
    out["n_signal"], out["n_noise"] = counts[1], counts[3]
    return out


def _stimulus_sums(part: tuple[np.ndarray, ...], cell: int, n_p: int, n_s: int,
                   ws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_p, B) 'fake' answers and trials of one cell per participant, stimuli weighted by
    ws (n_s, B)."""
    p, s, yes, c = part
    m = c == cell
    yes_ps = sparse.csr_matrix((yes[m], (p[m], s[m])), shape=(n_p, n_s))
    n_ps = sparse.csr_matrix((np.ones(m.sum()), (p[m], s[m])), shape=(n_p, n_s))
    return yes_ps @ ws, n_ps @ ws


def _boot_two_way(t: _Trials, wp: np.ndarray, ws: np.ndarray, correction: str
                  ) -> dict[str, np.ndarray]:
    """Participants (wp, (B, n_p)) and stimuli (ws, (B, n_s)) resampled together: a trial's
    weight is the product of its participant's and its stimulus's. Each statistic
    (B, n_groups); resamples go through in chunks so memory stays bounded."""
    n_boot, n_groups = wp.shape[0], len(t.keys)
    out: dict[str, np.ndarray] = {}
    if n_groups == 0:  # no group to resample (no fakes, grouped by what only fakes have)
        names = POOLED_STATS + PARTICIPANT_STATS + RATE_STATS + ("n_signal", "n_noise")
        return {name: np.empty((n_boot, 0)) for name in names}
    chunk = max(1, _CHUNK // max(t.n_p, 1))
    for b0 in range(0, n_boot, chunk):
        # participants x resamples, C-ordered: what sparse @ dense returns
        wpc = np.ascontiguousarray(wp[b0:b0 + chunk].T)
        wsc = np.ascontiguousarray(ws[b0:b0 + chunk].T)
        for k in np.unique(t.noise_of):
            if k >= 0:
                fa, n_noi = _stimulus_sums(t.noi, k, t.n_p, t.n_s, wsc)
            else:
                fa = n_noi = np.zeros_like(wpc)
            zf, ok_noise = _z(fa, n_noi, correction), n_noi > 0  # shared by k's groups
            for g in np.flatnonzero(t.noise_of == k):
                hits, n_sig = _stimulus_sums(t.sig, g, t.n_p, t.n_s, wsc)
                counts = [np.einsum("pb,pb->b", wpc, c) for c in (hits, n_sig, fa, n_noi)]
                stats = _pooled(*counts, correction)
                stats.update(_participant_mean(_z(hits, n_sig, correction), n_sig > 0, zf,
                                               ok_noise, wpc))
                stats["n_signal"], stats["n_noise"] = counts[1], counts[3]
                for name, value in stats.items():
                    out.setdefault(name, np.empty((n_boot, n_groups)))[b0:b0 + chunk, g] = value
    return out


def _boot_within_participant(t: _Trials, n_boot: int, rng: np.random.Generator,
                             correction: str) -> dict[str, np.ndarray]:
    """Trials resampled within each participant's cells, for groups that are one participant
    each: a cell of n trials with x 'fake' answers resamples to Binomial(n, x / n) of them,
    which is what drawing its n trials with replacement gives. Each statistic (B, n_groups)."""
    def draw(x: np.ndarray, n: np.ndarray) -> np.ndarray:
        rate = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
        return rng.binomial(n.astype(np.int64), rate, size=(n_boot, n.size)).astype(float)

    # bincount of no codes is int64 even with weights: cast, so empty cells stay float
    sig_yes = np.bincount(t.sig[3], weights=t.sig[2], minlength=len(t.keys)).astype(float)
    sig_n = np.bincount(t.sig[3], minlength=len(t.keys)).astype(float)
    noi_yes = np.bincount(t.noi[3], weights=t.noi[2], minlength=t.n_keys).astype(float)
    noi_n = np.bincount(t.noi[3], minlength=t.n_keys).astype(float)
    hits = draw(sig_yes, sig_n)
    fa = _to_groups(draw(noi_yes, noi_n).T, t.noise_of).T
    n_sig = np.broadcast_to(sig_n, hits.shape)
    n_noi = np.broadcast_to(_to_groups(noi_n, t.noise_of), hits.shape)
    out = _pooled(hits, n_sig, fa, n_noi, correction)
    out["dprime_mean_participant"] = out["dprime_pooled"]
    out["criterion_mean_participant"] = out["criterion_pooled"]
    out["n_signal"], out["n_noise"] = n_sig, n_noi
    return out


def _percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI along axis 0 of (B, n_groups) resampled statistics, ignoring NaN (the
    resamples in which a group's statistic is undefined); NaN where all are. The same numbers
    as np.nanquantile's linear method, for all groups in one sort (nanquantile loops over
    columns, slow with one group per participant)."""
    x = np.sort(samples, axis=0)  # NaN sort last
    n = (~np.isnan(samples)).sum(axis=0)
    out = []
    for q in ((1 - level) / 2, (1 + level) / 2):
        pos = q * np.maximum(n - 1, 0)
        below = np.floor(pos).astype(np.int64)
        above = np.minimum(below + 1, np.maximum(n - 1, 0))
        a = np.take_along_axis(x, below[None], axis=0)[0]
        b = np.take_along_axis(x, above[None], axis=0)[0]
        with np.errstate(invalid="ignore"):
            value = np.where(a == b, a, a + (b - a) * (pos - below))
        out.append(np.where(n > 0, value, np.nan))
    return out[0], out[1]


def _notes(point: dict[str, np.ndarray]) -> list[str]:
    notes = []
    for n_sig, n_noi, n_part in zip(point["n_signal"], point["n_noise"],
                                    point["n_participants"], strict=True):
        parts = []
        if n_sig == 0:
            parts.append("no fake (signal) trials: H, d', c and hype_inf undefined")
        if n_noi == 0:
            parts.append("no real (noise) trials: F, d', c and hype_inf undefined")
        if n_sig and n_noi and not n_part:
            parts.append("no participant judged both reals and fakes of this group: "
                         "mean of participants' d' undefined")
        notes.append("; ".join(parts))
    return notes


def _stimulus_strata(rt: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """(n_s,) stratum of each stimulus: its source and those of `columns` that are properties
    of the stimulus (one value per stimulus_id, such as model, guidance or class_label)."""
    per_stim = rt.groupby("_s", sort=True)
    fixed = [c for c in dict.fromkeys(["source"] + columns)
             if (per_stim[c].nunique(dropna=False) <= 1).all()]
    return per_stim[fixed].first().groupby(fixed, dropna=False).ngroup().to_numpy()


def sdt_table(
    trials: pd.DataFrame,
    by: list[str] | None = None,
    noise_by: list[str] | None = None,
    resample: tuple[str, ...] = ("participant",),
    n_boot: int = 1000,
    seed: int = 0,
    correction: str = "loglinear",
) -> pd.DataFrame:
    """Signal detection and HYPE-infinity error rates per group with bootstrap 95% CIs.

    trials: real/fake trials (see `judgment_trials`); by: columns that group the fakes (e.g.
    ["model"], ["model", "guidance"], ["class_label"], ["participant"]); noise_by: columns that
    pick the reals matched to a group (default: the `by` columns the reals fill, e.g.
    class_label; reals have no model or guidance, so those groups share all reals). The groups
    are the `by` values of the fakes and, when the reals carry every `by` column (class_label,
    participant), of the reals too: a class without fakes gets a row, H, d' and c NaN, with a
    note. With no fakes at all and a `by` only fakes fill (model), there is no group: no rows.

    resample: "participant" and/or "stimulus" (two-way bootstrap when both); () for no CIs.
    Stimuli are resampled within strata (source and the stimulus's own `by`/`noise_by` values),
    so every resample keeps each group's number of real and fake images, as the design does.
    With "participant" in `by`, each group is one person, and resampling people would only
    repeat or drop that person: the CI then comes from resampling trials within each
    participant's real and fake cells (which also resamples the images they saw), whatever
    `resample` names.

    Columns: the keys; the four counts; n_participants (participants with both reals and fakes
    in the group); H, F; dprime and criterion (from the pooled counts, as dprime_pooled and
    criterion_pooled); dprime_mean_participant and criterion_mean_participant (each
    participant's d' and c, then their mean: pooling observers with different criteria lowers
    the pooled d'); accuracy; error_fake (1 - H); error_real (F); hype_inf = (error_fake +
    error_real) / 2 (HYPE-infinity, Zhou et al. 2019); each statistic with its _lo/_hi CI;
    note (why a statistic is undefined: NaN, never a corrected rate standing in for missing
    trials); n_boot_dropped (resamples in which the group had no fakes or no reals, left out
    of its CIs; the CI of the mean of participants' d' also leaves out resamples in which no
    drawn participant judged both).
    """
    by = list(by or [])
    unknown = sorted(set(resample) - set(RESAMPLE_UNITS))
    if unknown:
        raise ValueError(f"resample: unknown unit(s) {unknown}; use 'participant' and/or "
                         "'stimulus'")
    keep = list(dict.fromkeys(by + list(noise_by or []) + ["source", "answer"]))
    rt = trials[keep].copy()  # only the columns needed: row selections stay cheap
    p, pu = pd.factorize(trials["participant"])
    s, su = pd.factorize(trials["stimulus_id"])
    rt["_p"], rt["_s"] = p, s
    if noise_by is None:
        reals = rt.loc[~realfake.is_fake(rt["source"])]
        noise_by = [c for c in by if len(reals) and (reals[c].astype(str).str.len() > 0).all()
                    and reals[c].notna().all()]
    t = _trials(rt, by, list(noise_by), len(pu), len(su))
    point = _point(t, correction)
    out = t.keys.copy()
    for name in COUNTS:
        out[name] = point[name].astype(np.int64)
    out["n_participants"] = point["n_participants"].astype(np.int64)
    rng = np.random.default_rng(seed)
    boot = None
    if resample and "participant" in by:
        boot = _boot_within_participant(t, n_boot, rng, correction)
    elif resample:
        wp = resample_weights(len(pu), n_boot, rng) if "participant" in resample else None
        ws = None
        if "stimulus" in resample:
            ws = stratified_resample_weights(_stimulus_strata(rt, by + list(noise_by)), n_boot,
                                             rng)
        if ws is None:
            boot = _boot_participants(t, wp, correction)
        else:
            wp = np.ones((n_boot, len(pu))) if wp is None else wp
            boot = _boot_two_way(t, wp, ws, correction)
    for name in POOLED_STATS + PARTICIPANT_STATS + RATE_STATS:
        out[name] = point[name]
        if boot is not None:
            lo, hi = _percentile_ci(boot[name])
            out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    out["note"] = _notes(point)
    if boot is not None:
        empty = (boot["n_signal"] == 0) | (boot["n_noise"] == 0)
        out["n_boot_dropped"] = empty.sum(axis=0).astype(np.int64)
    return out


RULE_FROM = ("given", "recorded", "default")  # where staircase_thresholds took each rule


def describe_rule(rule: staircase.Rule) -> str:
    """A staircase's settings as one line: 'up=1, down=3, step_ms=50, ...'."""
    return (f"up={rule.up}, down={rule.down}, step_ms={rule.step_ms:g}, min_ms={rule.min_ms:g}, "
            f"max_ms={rule.max_ms:g}, start_ms={rule.start_ms:g}, "
            f"n_reversals_threshold={rule.n_reversals_threshold}")


EXPOSURE_TOLERANCE_MS = 40.0  # measured vs set exposure: a couple of 60 Hz frames


def staircase_thresholds(
    trials: pd.DataFrame,
    rule: staircase.StaircaseRule | None = None,
    recorded: dict[tuple[str, ...], staircase.StaircaseRule | None] | None = None,
) -> pd.DataFrame:
    """HYPE-time: per participant, the exposure the staircase converged to, as the server has it.

    trials: real/fake main trials with participant, condition, trial_index, exposure_ms and
    correct (and study, to look up `recorded`); a participant whose exposure_ms varies ran a
    staircase. Each participant's answers are replayed through the server's own rule
    (`analysis.staircase.update`) from their first exposure, so the reversals and the threshold
    are the server's, including a reversal caused by the last answer (which no exported
    exposure shows) and steps cancelled by the bounds.

    The rule replayed, in this order: `rule` for every participant (rule_from "given");
    else the settings the export records for the participant's study and condition
    (`Export.staircase`: {(study, condition, design_hash): rule} for the design version the
    participant started under (trials column design_hash), as an edited study served it, else
    {(study, condition): rule}, the study's settings at export; condition "" is the study's
    own settings, used for a condition not listed; None where the staircase was off, and that
    participant is left out: their exposures vary only as measured, not by a staircase;
    "recorded"); else the study app's defaults ("default"). The exported exposures are the
    ones the browser measured, a frame or two off the server's; a participant whose exposures
    the replay does not reproduce within min(step_ms / 2, EXPOSURE_TOLERANCE_MS) ran under
    other settings: threshold NaN and a note. Thresholds are in the server's exposures.

    Columns: participant, condition, n_trials, n_reversals, threshold_ms (mean of the last
    rule.n_reversals_threshold reversals; NaN without any), rule (`describe_rule`), rule_from,
    note.
    """
    cols = ["participant", "condition", "n_trials", "n_reversals", "threshold_ms", "rule",
            "rule_from", "note"]
    df = trials.loc[trials["exposure_ms"].notna()]
    df = df.loc[df.groupby("participant")["exposure_ms"].transform("nunique") > 1]
    df = df.sort_values(["participant", "trial_index"], kind="stable")
    rows = []
    for pid, g in df.groupby("participant", sort=True):
        cond = g["condition"].iloc[0]
        study = g["study"].iloc[0] if "study" in g.columns else ""
        version = g["design_hash"].iloc[0] if "design_hash" in g.columns else ""
        keys = [k for k in ((study, cond, version), (study, "", version), (study, cond), (study, ""))
                if recorded and k in recorded and (len(k) == 2 or version)]
        if rule is not None:
            use, origin = rule, "given"
        elif keys:
            use = recorded[keys[0]]
            if use is None:
                continue  # no staircase ran
            origin = "recorded"
        else:
            use, origin = staircase.StaircaseRule(), "default"
        exposure = g["exposure_ms"].to_numpy(float)
        # The export holds the exposure the browser measured, which differs from the one the
        # server set by up to a display frame or two; a replay matches when every exposure lies
        # within half a step (or EXPOSURE_TOLERANCE_MS, if smaller) of the server's.
        tol = min(use.step_ms / 2, EXPOSURE_TOLERANCE_MS)
        start = use.start_ms if abs(exposure[0] - use.start_ms) <= tol else exposure[0]
        shown, state = staircase.replay(start, g["correct"].to_numpy() == 1, use)
        matches = bool(np.all(np.abs(np.asarray(shown) - exposure) <= tol))
        value = staircase.threshold(state, use)
        rows.append({
            "participant": pid, "condition": cond, "n_trials": len(g),
            "n_reversals": len(state["reversals"]) if matches else pd.NA,
            "threshold_ms": value if matches and value is not None else np.nan,
            "rule": describe_rule(use), "rule_from": origin,
            "note": "" if matches else (
                f"the staircase settings ({describe_rule(use)}) do not reproduce this "
                "participant's exposures"),
        })
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows, columns=cols).astype({"n_reversals": "Int64"})


def summarise_thresholds(thresholds: pd.DataFrame, n_boot: int = 1000, seed: int = 0
                         ) -> pd.DataFrame:
    """Mean staircase threshold per condition with a bootstrap CI over participants."""
    from analysis.stats import bootstrap_mean_ci

    rows = []
    for cond, g in thresholds.groupby("condition", sort=True):
        mean, lo, hi = bootstrap_mean_ci(g["threshold_ms"].to_numpy(float), n_boot, seed)
        rows.append({"condition": cond, "n_participants": int(g["threshold_ms"].notna().sum()),
                     "threshold_ms": mean, "threshold_ms_lo": lo, "threshold_ms_hi": hi})
    return pd.DataFrame(rows, columns=["condition", "n_participants", "threshold_ms",
                                       "threshold_ms_lo", "threshold_ms_hi"])


def accuracy_by_exposure(trials: pd.DataFrame, bin_ms: float = 100.0) -> pd.DataFrame:
    """Accuracy per exposure bin (width bin_ms) and source with a normal-approximation 95% CI.

    Columns: exposure_ms (bin centre), source, n, accuracy, accuracy_lo, accuracy_hi.
    """
    df = trials.loc[trials["exposure_ms"].notna()]
    centre = (np.floor(df["exposure_ms"] / bin_ms) + 0.5) * bin_ms
    g = df.assign(exposure_ms=centre).groupby(["exposure_ms", "source"], sort=True)["correct"]
    out = g.agg(n="size", accuracy="mean").reset_index()
    se = np.sqrt(out["accuracy"] * (1 - out["accuracy"]) / out["n"])
    out["accuracy_lo"] = (out["accuracy"] - 1.96 * se).clip(0, 1)
    out["accuracy_hi"] = (out["accuracy"] + 1.96 * se).clip(0, 1)
    return out


@dataclass
class MixedLogit:
    """Fixed effects and random-intercept SDs on the logit scale (columns: see `mixed_logit`)."""

    fixed: pd.DataFrame
    random: pd.DataFrame
    n_trials: int


def fixed_design(df: pd.DataFrame, fixed: list[str],
                 reference: dict[str, str] | None = None) -> pd.DataFrame:
    """Intercept plus treatment-coded dummies per column; the base level is reference[col]
    when given, else the first sorted level."""
    cols = {"Intercept": np.ones(len(df))}
    for col in fixed:
        values = df[col].astype(str)
        levels = sorted(values.unique())
        base = (reference or {}).get(col, levels[0] if levels else "")
        for level in [lv for lv in levels if lv != base]:
            cols[f"C({col})[T.{level}]"] = (values == level).to_numpy(float)
    return pd.DataFrame(cols, index=df.index)


def random_design(df: pd.DataFrame, groups: list[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sparse indicator columns of each grouping factor and the `ident` vector of statsmodels."""
    blocks, ident = [], []
    for i, col in enumerate(groups):
        codes, uniq = pd.factorize(df[col].astype(str), sort=True)
        blocks.append(sparse.csr_matrix(
            (np.ones(len(df)), (np.arange(len(df)), codes)), shape=(len(df), len(uniq))))
        ident.append(np.full(len(uniq), i))
    return sparse.hstack(blocks).tocsr(), np.concatenate(ident).astype(int)


def laplace_fixed_cov(x: np.ndarray, z: sparse.spmatrix, ident: np.ndarray,
                      fe_mean: np.ndarray, re_mean: np.ndarray, re_sd: np.ndarray,
                      fe_prior_sd: float = np.inf) -> np.ndarray:
    """Laplace approximation of the covariance of the fixed effects of a logistic mixed model.

    x: (n, p) fixed design; z: (n, q) sparse random-effects design; ident: (q,) variance
    component of each random effect; fe_mean (p,), re_mean (q,): where to expand (the
    posterior means); re_sd: (n_components,) random-effect SDs; fe_prior_sd: SD of a normal
    prior on each fixed effect (inf: flat). The Hessian of the negative log joint density of
    (fixed, random) effects is [[X'WX + I/prior^2, X'WZ], [Z'WX, Z'WZ + diag(1/sd^2)]],
    W = diag(mu (1 - mu)); the fixed effects' block of its inverse is the inverse of the Schur
    complement X'WX + I/prior^2 - X'WZ (Z'WZ + diag(1/sd^2))^-1 Z'WX. This keeps the coupling
    between fixed and random effects that a mean-field variational posterior drops (why its
    SDs are too small), and is the covariance glmer reports for given variance components.
    Returns (p, p).
    """
    mu = 1.0 / (1.0 + np.exp(-(x @ fe_mean + z @ re_mean)))
    w = mu * (1.0 - mu)
    xw = x * w[:, None]
    a = (z.T @ sparse.diags(w) @ z + sparse.diags(1.0 / np.asarray(re_sd)[ident] ** 2)).tocsc()
    ztwx = np.asarray(z.T @ xw)
    schur = x.T @ xw + np.eye(x.shape[1]) / fe_prior_sd**2 - ztwx.T @ splu(a).solve(ztwx)
    return np.linalg.inv(schur)


def mixed_logit(
    trials: pd.DataFrame,
    fixed: list[str] | None = None,
    groups: list[str] | None = None,
    outcome: str = "correct",
    fit_method: str = "L-BFGS-B",
    minim_opts: dict[str, float] | None = None,
    reference: dict[str, str] | None = None,
) -> MixedLogit:
    """Logistic mixed model of `outcome` (0/1) with crossed random intercepts.

    statsmodels BinomialBayesMixedGLM fitted by variational Bayes; fixed: categorical columns
    (default ["source"]); groups: random-intercept factors (default participant, stimulus_id).
    The design is built sparse, so large data sets fit without dense indicator matrices;
    fit_method is scipy's optimiser of the variational objective (L-BFGS-B: about 10x faster
    than statsmodels' default BFGS with thousands of random-effect levels, same optimum);
    minim_opts: its options (default tight tolerances for L-BFGS-B); reference: base level
    per fixed column (e.g. {"model": "real"}).

    fixed columns: term, mean (posterior mean), se_laplace (standard error from the Laplace
    approximation at the posterior means and the fitted random-effect SDs, see
    `laplace_fixed_cov`), lo/hi (mean -/+ 1.96 se_laplace, the 95% CI), vb_sd (the
    variational posterior SD: mean-field, it ignores the coupling with the random effects
    and comes out 2-3x smaller than the spread of the estimates over repeated data sets, so
    it is no standard error). random columns: group, sd (random-intercept SD), log_sd and
    log_sd_vb_sd (its variational posterior mean and SD on the log scale).
    """
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    fixed = ["source"] if fixed is None else fixed
    groups = ["participant", "stimulus_id"] if groups is None else groups
    df = trials.loc[trials[outcome].notna()]
    x = fixed_design(df, fixed, reference)
    z, ident = random_design(df, groups)
    model = BinomialBayesMixedGLM(df[outcome].to_numpy(float), x.to_numpy(), z, ident,
                                  fep_names=list(x.columns), vcp_names=list(groups))
    if minim_opts is None and fit_method == "L-BFGS-B":
        minim_opts = {"ftol": 1e-14, "gtol": 1e-9, "maxiter": 5000}
    res = model.fit_vb(fit_method=fit_method, minim_opts=minim_opts)
    cov = laplace_fixed_cov(x.to_numpy(), z, ident, res.fe_mean, res.vc_mean,
                            np.exp(res.vcp_mean), model.fe_p)
    se = np.sqrt(np.diag(cov))
    half = norm.ppf(0.975) * se
    fe = pd.DataFrame({"term": list(x.columns), "mean": res.fe_mean, "se_laplace": se,
                       "lo": res.fe_mean - half, "hi": res.fe_mean + half,
                       "vb_sd": res.fe_sd})
    re = pd.DataFrame({"group": list(groups), "sd": np.exp(res.vcp_mean),
                       "log_sd": res.vcp_mean, "log_sd_vb_sd": res.vcp_sd})
    return MixedLogit(fe, re, len(df))
