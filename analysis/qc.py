"""Quality control: flag participants for failed catch trials, too-fast answers, focus losses."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class QCRules:
    """Exclusion thresholds (a participant is excluded when any rule fails).

    min_catch_accuracy: share of catch trials answered right; max_fast_fraction: share of main
    trials faster than fast_rt_ms; max_focus_losses: count of focus-loss events (kinds in
    focus_kinds, e.g. the browser's `blur`).
    """

    min_catch_accuracy: float = 0.75
    fast_rt_ms: float = 200.0
    max_fast_fraction: float = 0.2
    max_focus_losses: int = 5
    focus_kinds: tuple[str, ...] = ("blur", "visibility_hidden", "focus_lost")


def flag_participants(trials: pd.DataFrame, events: pd.DataFrame,
                      rules: QCRules | None = None) -> pd.DataFrame:
    """One row per participant: counts, the three flags, `excluded` and `reasons` (text).

    Catch accuracy uses real/fake catch trials with a `correct` value; a ClickMe catch trial
    (no `correct`) is not scored. Participants with no catch trials are not flagged for them.
    """
    rules = rules or QCRules()
    parts = pd.Index(sorted(trials["participant"].unique()), name="participant")
    out = pd.DataFrame(index=parts)
    catch = trials.loc[(trials["trial_kind"] == "catch") & trials["correct"].notna()]
    cg = catch.groupby("participant")["correct"]
    out["n_catch"] = cg.size().reindex(parts).fillna(0).astype(int)
    out["catch_accuracy"] = cg.mean().reindex(parts)
    main = trials.loc[trials["trial_kind"] == "main"]
    fast = (main["rt_ms"] < rules.fast_rt_ms).groupby(main["participant"])
    out["n_main"] = fast.size().reindex(parts).fillna(0).astype(int)
    out["fast_fraction"] = fast.mean().reindex(parts).fillna(0.0)
    focus = events.loc[events["kind"].isin(rules.focus_kinds)]
    out["focus_losses"] = focus.groupby("participant").size().reindex(parts).fillna(0).astype(int)
    out["failed_catch"] = out["catch_accuracy"].fillna(1.0) < rules.min_catch_accuracy
    out["too_fast"] = out["fast_fraction"] > rules.max_fast_fraction
    out["focus_lost"] = out["focus_losses"] > rules.max_focus_losses
    flags = out[["failed_catch", "too_fast", "focus_lost"]]
    out["excluded"] = flags.any(axis=1)
    reasons = pd.Series("", index=out.index)
    for col, text in (("failed_catch", "failed catch trials"), ("too_fast", "too fast"),
                      ("focus_lost", "focus losses")):
        reasons = reasons + out[col].map({True: text + "; ", False: ""})
    out["reasons"] = reasons.str.removesuffix("; ")
    return out.reset_index()


def qc_summary(flags: pd.DataFrame) -> pd.DataFrame:
    """How many participants each rule flags and how many are excluded in total."""
    rows = [{"rule": r, "n_participants": int(flags[r].sum())}
            for r in ("failed_catch", "too_fast", "focus_lost", "excluded")]
    rows.append({"rule": "total", "n_participants": len(flags)})
    return pd.DataFrame(rows)
