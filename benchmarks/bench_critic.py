"""The one-shot critic against people: error on the 20 Omniglot one-shot runs over several seeds.

`python -m benchmarks critic [--data ../shared/data/omniglot] [--seeds 0 1 2] [--episodes N] [--test-shift R] [--jobs 2] [--no-write]`

Each seed trains the repo's critic (models.classifiers.protonet.train_critic with CriticRecipe:
a Conv-4 ProtoNet, rotations by 90 degrees as new classes, a random affine distortion of every
episode image) on the minimal background splits (images_background_small1/2) at 28 px, and
scores it on the 20 within-alphabet 20-way 1-shot runs of Lake et al. (2015) (all_runs.zip), where
people make 4.5% errors. Seeds train in parallel worker processes with one torch thread each; the
CPU seconds are each worker's own. Writes the section `critic` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from benchmarks.report import ROOT, add_replay_options, markdown_table, run_or_replay  # noqa: E402
from models.classifiers.protonet import MAX_TEST_SHIFT  # noqa: E402

SIZE = 28  # px, as the cpu profile's models


def _one_seed(args: tuple) -> dict:
    data_root, seed, episodes, affine, within, size, queries, test_shift = args
    torch.set_num_threads(1)
    from models.classifiers.omniglot_runs import load_one_shot_runs
    from models.classifiers.protonet import CriticRecipe, one_shot_accuracy, train_critic
    from models.data import load_dataset

    data = load_dataset("omniglot", data_root, size)
    recipe = CriticRecipe(affine=affine, within_alphabet=within)
    if episodes is not None:
        recipe = dataclasses.replace(recipe, episodes=episodes)
    if queries is not None:
        recipe = dataclasses.replace(recipe, n_query=queries)
    if test_shift is not None:
        recipe = dataclasses.replace(recipe, test_shift=test_shift)
    start = time.process_time()
    net = train_critic(data.images, data.labels, recipe, class_names=data.class_names, seed=seed, device="cpu")
    train_cpu = time.process_time() - start
    runs = load_one_shot_runs(Path(data_root) / "all_runs.zip", size)
    per_run = [1.0 - one_shot_accuracy(net, [task], device="cpu") for task in runs]
    return {"seed": seed, "error": statistics.fmean(per_run), "per_run": per_run, "train_cpu_s": train_cpu,
            "recipe": dataclasses.asdict(recipe), "size": size, "n_classes": len(data.class_names), "n_images": len(data)}


def run(args: argparse.Namespace) -> dict:
    """Train and score every seed; each finished seed is written to `args.out` at once, so an
    interrupted run keeps the seeds it finished."""
    wall = time.time()
    jobs = [(args.data, seed, args.episodes, not args.no_affine, args.within_alphabet, args.size, args.queries,
             args.test_shift) for seed in args.seeds]
    summary = {"results": [], "wall_s": 0.0,
               "args": {"seeds": args.seeds, "episodes": args.episodes, "jobs": args.jobs, "no_affine": args.no_affine,
                        "within_alphabet": args.within_alphabet, "size": args.size, "queries": args.queries,
                        "test_shift": args.test_shift}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        for done in as_completed([pool.submit(_one_seed, job) for job in jobs]):
            r = done.result()
            print(f"seed {r['seed']}: error {r['error']:.3f} ({r['train_cpu_s']:.0f} CPU-s)", flush=True)
            summary["results"] = sorted([*summary["results"], r], key=lambda x: x["seed"])
            summary["wall_s"] = time.time() - wall
            args.out.write_text(json.dumps(summary, indent=1))
    return summary


def report(summary: dict) -> str:
    from models.classifiers.omniglot_runs import HUMAN_ERROR

    res = summary["results"]
    errors = [r["error"] for r in res]
    mean, sd = statistics.fmean(errors), statistics.stdev(errors) if len(errors) > 1 else float("nan")
    recipe = res[0]["recipe"]
    a = summary["args"]
    seeds = " ".join(str(s) for s in a["seeds"])
    command = (f"python -m benchmarks critic --seeds {seeds}" + (f" --episodes {a['episodes']}" if a["episodes"] else "")
               + (" --no-affine" if a.get("no_affine") else "")
               + (f" --within-alphabet {a['within_alphabet']:g}" if a.get("within_alphabet") else "")
               + (f" --queries {a['queries']}" if a.get("queries") else "")
               + (f" --test-shift {a['test_shift']}" if a.get("test_shift") is not None else "")
               + (f" --size {a['size']}" if a.get("size", SIZE) != SIZE else ""))
    rows = [[r["seed"], f"{100 * r['error']:.1f}%", f"{r['train_cpu_s'] / 60:.1f}"] for r in res]
    lines = [
        "### One-shot critic on the 20 Omniglot runs, over seeds",
        "",
        f"Command: `{command}` ({summary['wall_s'] / 60:.0f} min wall, {platform.machine()}, one torch thread "
        f"per seed, {a['jobs']} at once). Training data: the minimal background splits "
        f"({res[0]['n_classes']} characters, {res[0]['n_images']} drawings) at {res[0].get('size', SIZE)} px. Recipe "
        f"(models.classifiers.protonet.CriticRecipe): {recipe['episodes']} episodes of {recipe['n_way']}-way "
        f"1-shot with {recipe['n_query']} queries per class, Adam at {recipe['lr']:g} halved every quarter, "
        f"rotations as new classes: {recipe['rotations']}, random affine distortions: {recipe['affine']}, "
        f"episodes within one alphabet: {recipe.get('within_alphabet', 0.0):.0%}, test-time shifts: "
        f"{_shifts_text(recipe.get('test_shift', 0))}.",
        "",
        markdown_table(["seed", "error on the 20 runs", "training CPU-min"], rows),
        "",
        f"**Mean {100 * mean:.1f}% (SD {100 * sd:.1f} points) over {len(res)} seeds**; people make "
        f"{100 * HUMAN_ERROR:.1f}% errors on the same runs (Lake et al. 2015).",
    ]
    return "\n".join(lines) + "\n"


def _shifts_text(r: int) -> str:
    return "none" if not r else f"mean embedding over the {(2 * r + 1) ** 2} shifts of up to {r} px (ProtoNet.embed)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks critic", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "omniglot"),
                   help="folder with images_background_small*.zip and all_runs.zip")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=None, help="training episodes (default: the recipe's)")
    p.add_argument("--jobs", type=int, default=2, help="seeds trained at once")
    p.add_argument("--no-affine", action="store_true", help="train without the random affine distortions")
    p.add_argument("--size", type=int, default=SIZE, help="image size in px of training and test drawings")
    p.add_argument("--within-alphabet", type=float, default=0.0, metavar="F",
                   help="fraction of training episodes drawn from one alphabet, as the test runs are (0-1)")
    p.add_argument("--queries", type=int, default=None, help="query drawings per class in a training episode "
                   "(default: the recipe's)")
    p.add_argument("--test-shift", type=int, default=None, metavar="R",
                   help=f"score with the embedding averaged over shifts of up to R px (0-{MAX_TEST_SHIFT}; "
                        "default: the recipe's)")
    p.add_argument("--out", type=Path, default=ROOT / "data" / "bench" / "critic.json")
    add_replay_options(p)
    args = p.parse_args(argv)

    def check() -> str | None:
        if args.test_shift is not None and not 0 <= args.test_shift <= MAX_TEST_SHIFT:
            return f"--test-shift: must lie within [0, {MAX_TEST_SHIFT}] pixels"
        if args.queries is not None and not 1 <= args.queries <= 19:
            return "--queries: must lie within [1, 19] (an Omniglot character has 20 drawings, one is the support)"
        return None if (Path(args.data) / "all_runs.zip").is_file() else f"--data: no all_runs.zip in {args.data}"

    return run_or_replay(args, "critic", check, run, report)
