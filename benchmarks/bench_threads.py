"""CPU threads for `python -m models train`: training steps/s with 1 and 2 torch threads.

`python -m benchmarks threads [--steps 150] [--rounds 2] [--config models/configs/tiny_ddpm.toml]
[--no-write]` runs the real command line in a fresh process per measurement,
`python -m models train CONFIG --steps N --threads T --device cpu --no-progress`, with OpenMP's
wait policy left to the environment and with `OMP_WAIT_POLICY=PASSIVE`, alternating the four
settings round by round so that a change in the machine's load hits them alike. Steps/s is the
training loop's own images/s (printed by the command) over the config's batch size; the wall
time includes Python and torch start-up. Writes the `threads` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from benchmarks.report import ROOT, markdown_table, write_section

RATE = re.compile(r"(\d+) images/s on cpu")


def run_once(config: Path, steps: int, threads: int, passive: bool, out: Path,
             timeout_s: float) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in {"OMP_WAIT_POLICY", "OMP_NUM_THREADS"}}
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [sys.executable, "-m", "models", "train", str(config), "--steps", str(steps),
           "--threads", str(threads), "--device", "cpu", "--no-progress", "--out", str(out)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"images_per_s": None, "wall_s": None, "load": load}
    wall = time.perf_counter() - t0
    found = RATE.search(proc.stdout)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return {"images_per_s": float(found.group(1)), "wall_s": wall, "load": load}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks threads", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("models/configs/tiny_ddpm.toml"))
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--timeout", type=float, default=240.0, help="seconds before one run counts as too slow")
    p.add_argument("--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone")
    args = p.parse_args(argv)
    import tomllib

    batch = tomllib.loads((ROOT / args.config).read_text())["training"]["batch_size"]
    settings = [(t, passive) for passive in (False, True) for t in (1, 2)]
    results: dict[tuple[int, bool], list[dict[str, object]]] = {s: [] for s in settings}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for threads, passive in settings:
                out = Path(tmp) / f"r{r}-t{threads}-{int(passive)}"
                res = run_once(args.config, args.steps, threads, passive, out, args.timeout)
                results[(threads, passive)].append(res)
                rate = res["images_per_s"]
                print(f"round {r}: threads {threads} {'PASSIVE' if passive else 'default'} wait: "
                      f"{'timeout' if rate is None else f'{rate / batch:.1f} steps/s'} "
                      f"(load {res['load']:.1f})", flush=True)
    total = time.perf_counter() - started

    rows = []
    for threads, passive in settings:
        runs = results[(threads, passive)]
        rates = [r["images_per_s"] / batch for r in runs if r["images_per_s"] is not None]
        walls = [r["wall_s"] for r in runs if r["wall_s"] is not None]
        rows.append([
            threads, "PASSIVE" if passive else "not set",
            ", ".join("timeout" if r["images_per_s"] is None else f"{r['images_per_s'] / batch:.1f}"
                      for r in runs),
            f"{median(rates):.1f}" if rates else "-",
            f"{median(walls):.0f}" if walls else f"> {args.timeout:.0f}",
            f"{min(r['load'] for r in runs):.1f}-{max(r['load'] for r in runs):.1f}",
        ])
    medians = {s: median(r["images_per_s"] / batch for r in results[s] if r["images_per_s"] is not None)
               for s in settings if any(r["images_per_s"] is not None for r in results[s])}
    best = max(medians, key=medians.get)
    reading = (f"Fastest here: {best[0]} thread(s), OMP_WAIT_POLICY "
               f"{'PASSIVE' if best[1] else 'not set'} ({medians[best]:.1f} steps/s).")
    if (1, False) in medians and (2, False) in medians:
        reading += (f" 1 thread against 2 with the policy not set (torch's default on this machine): "
                    f"{medians[(1, False)] / medians[(2, False)]:.1f}x the steps/s.")
    cmd = "python -m benchmarks threads" + "".join(
        f" --{k} {v}" for k, v in (("steps", args.steps), ("rounds", args.rounds)))
    md = f"""### CPU threads for `python -m models train`

Command: `{cmd}` ({total:.0f} s; {platform.machine()}, {os.cpu_count()} CPU cores shared with
other jobs, so the load average, taken as each run started, is given). Each run is
`python -m models train {args.config} --steps {args.steps} --threads T --device cpu --no-progress`
in a fresh process; steps/s is the training loop's images/s over the batch of {batch}; wall
includes start-up. `OMP_WAIT_POLICY` is either left unset (OpenMP spins while it waits) or
`PASSIVE` (it sleeps).

{markdown_table(["threads", "OMP_WAIT_POLICY", "steps/s per round", "median steps/s", "median wall s", "load"], rows)}

{reading}
"""
    print(md)
    if not args.no_write:
        write_section("threads", md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
