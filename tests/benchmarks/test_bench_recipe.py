"""The recipe benchmark's pure parts: which changes `combined` takes, and the report it writes."""

from benchmarks import bench_recipe


def _r(rec, se=0.02, **extra):
    return {"recognizability": rec, "recognizability_se": se, "fd": 10.0, "steps": 100,
            "train_cpu_s": 60.0, "sample_cpu_s": 5.0, **extra}


def test_combined_takes_only_changes_that_beat_the_baseline_by_more_than_one_se():
    results = {"baseline": _r(0.30), "cosine": _r(0.36), "min_snr": _r(0.31), "lr_cosine": _r(0.40, se=0.05),
               "v_prediction": _r(0.20)}
    merged = bench_recipe._combined(results)
    assert merged == {**bench_recipe.VARIANTS["cosine"], **bench_recipe.VARIANTS["lr_cosine"]}
    assert bench_recipe._combined({"baseline": _r(0.3), "cosine": _r(0.31)}) == {}


def test_report_names_the_command_the_ratio_and_every_variant():
    summary = {
        "args": {"steps": 100, "jobs": 2, "classes": 40, "per_class": 10},
        "results": {"baseline": _r(0.30), "cosine": _r(0.36),
                    "combined": _r(0.36, overrides={"diffusion.schedule": "cosine"})},
        "samplers": {"ddim-50": _r(0.36), "dpmpp_2m-10": _r(0.33)},
        "diffusers": {**_r(0.15), "params": 1000},
        "human": _r(0.80), "wall_s": 600.0, "cpu_s": 1200.0,
    }
    text = bench_recipe.report(summary)
    assert "python -m benchmarks recipe --steps 100 --jobs 2" in text
    assert "| cosine | diffusion.schedule=cosine | 100 | 0.360 (0.020) | +0.060 |" in text
    assert "| combined | diffusion.schedule=cosine |" in text
    assert "ours / diffusers, same CPU budget: **2.00**" in text
    assert "dpmpp_2m-10" in text
