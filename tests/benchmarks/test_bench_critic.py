"""The critic benchmark's report: mean and SD over seeds, the command, the recipe, people's error."""

from benchmarks import bench_critic


def test_report_gives_mean_and_sd_over_seeds_with_the_recipe():
    recipe = {"episodes": 100, "n_way": 20, "n_query": 5, "rotations": True, "affine": True, "lr": 1e-3}
    res = [{"seed": s, "error": e, "train_cpu_s": 120.0, "recipe": recipe, "n_classes": 242, "n_images": 4840}
           for s, e in [(0, 0.10), (1, 0.12), (2, 0.08)]]
    text = bench_critic.report({"results": res, "wall_s": 60.0, "args": {"seeds": [0, 1, 2], "episodes": 100, "jobs": 2}})
    assert "`python -m benchmarks critic --seeds 0 1 2 --episodes 100`" in text
    assert "**Mean 10.0% (SD 2.0 points) over 3 seeds**" in text
    assert "| 1 | 12.0% | 2.0 |" in text
    assert "4.5% errors" in text and "100 episodes of 20-way" in text


def test_report_names_the_within_alphabet_share_and_the_size_it_ran_with():
    recipe = {"episodes": 100, "n_way": 20, "n_query": 5, "rotations": True, "affine": False, "lr": 1e-3,
              "within_alphabet": 0.5}
    res = [{"seed": 0, "error": 0.1, "train_cpu_s": 60.0, "recipe": recipe, "size": 56, "n_classes": 242,
            "n_images": 4840}]
    args = {"seeds": [0], "episodes": None, "jobs": 1, "no_affine": True, "within_alphabet": 0.5, "size": 56,
            "queries": 15}
    recipe["n_query"] = 15
    text = bench_critic.report({"results": res, "wall_s": 60.0, "args": args})
    assert "`python -m benchmarks critic --seeds 0 --no-affine --within-alphabet 0.5 --queries 15 --size 56`" in text
    assert "with 15 queries per class" in text
    assert "at 56 px" in text and "episodes within one alphabet: 50%" in text


def test_queries_outside_an_omniglot_class_are_refused(capsys):
    assert bench_critic.main(["--queries", "20", "--no-write"]) == 2
    assert "--queries: must lie within [1, 19]" in capsys.readouterr().out


def test_report_names_the_test_time_shifts():
    recipe = {"episodes": 100, "n_way": 20, "n_query": 5, "rotations": True, "affine": False, "lr": 1e-3,
              "within_alphabet": 1.0, "test_shift": 2}
    res = [{"seed": 0, "error": 0.095, "train_cpu_s": 60.0, "recipe": recipe, "n_classes": 242, "n_images": 4840}]
    args = {"seeds": [0], "episodes": None, "jobs": 1, "no_affine": True, "within_alphabet": 1.0, "test_shift": 2}
    text = bench_critic.report({"results": res, "wall_s": 60.0, "args": args})
    assert "`python -m benchmarks critic --seeds 0 --no-affine --within-alphabet 1 --test-shift 2`" in text
    assert "mean embedding over the 25 shifts of up to 2 px" in text
    recipe["test_shift"] = 0
    args["test_shift"] = None
    text = bench_critic.report({"results": res, "wall_s": 60.0, "args": args})
    assert "--test-shift" not in text and "test-time shifts: none" in text


def test_test_shifts_beyond_four_pixels_are_refused(capsys):
    assert bench_critic.main(["--test-shift", "5", "--no-write"]) == 2
    assert "--test-shift: must lie within [0, 4]" in capsys.readouterr().out
