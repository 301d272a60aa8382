"""The known-truth attribution benchmark end to end at its quick size (python -m benchmarks
attribution_truth --quick): every method is scored, the verdict follows its two checks, and the
check that exposes blank-baseline methods fires whatever the models learned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_attribution_truth as bench

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("truth")
    out = tmp / "result.json"
    rc = bench.main(["--quick", "--no-write", "--no-progress", "--threads", "1", "--cache", str(tmp / "cache"),
                     "--json", str(out)])
    assert rc == 0
    return json.loads(out.read_text())


def test_every_method_is_scored_with_cis(result: dict) -> None:
    rows = result["known_truth"]
    seen = {(r["model"], r["method"]) for r in rows}
    want = {("CFGDM (class)", m) for m in bench.DIFFUSION_METHODS[1:]} | {
        ("lenet", m) for m in bench.CLASSIFIER_METHODS}
    assert want <= seen
    for r in rows:
        assert r["chance"] == pytest.approx(1 / 16)
        for name in ("mass_in_region", "pointing_game", "spearman_mask", "randomisation_spearman"):
            assert r[f"{name}_lo"] <= r[name] <= r[f"{name}_hi"], (r["method"], name)
        assert r["works"] == (r["passes_region"] and r["passes_randomisation"])


def test_blank_baseline_integrated_gradients_fails_the_randomisation_check(result: dict) -> None:
    """IG from the blank canvas is zero on every blank pixel, so trained and random weights give
    nearly the same (ink-shaped) map: the check must catch it."""
    ig = next(r for r in result["known_truth"] if r["model"] == "lenet" and r["method"] == "integrated_gradients")
    assert ig["randomisation_spearman"] > 0.9 and not ig["works"]


def test_reliability_rows_and_verdict_file_shape(result: dict) -> None:
    rel = result["reliability"]
    assert {r["method"] for r in rel} == set(bench.SWEPT)
    assert {r["model"] for r in rel} == {"CFGDM marks (class)", "CFGDM digits (exemplar)"}
    assert all(-1 <= r["split_half"] <= 1 for r in rel)
    assert all("spearman_ink" in r for r in rel if r["model"].startswith("CFGDM digits"))
    verdicts = bench.verdicts(result["known_truth"])
    assert verdicts["integrated_gradients"]["works"] is False
    assert set(verdicts["saliency"]["models"]) == {"lenet"}


def test_committed_verdicts_cover_the_study_pipelines_methods() -> None:
    from experiments import modelmaps

    data = json.loads(Path(bench.VERDICTS).read_text())
    assert set(modelmaps.BENCHMARKED_AS.values()) <= set(data["methods"])
    assert data["command"].startswith("python -m benchmarks attribution_truth")
