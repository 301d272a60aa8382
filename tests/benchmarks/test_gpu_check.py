"""`make gpu-check` (benchmarks.gpu_check): its CPU form runs every step end to end at the --quick
sizes, so the script cannot rot while no GPU is at hand; a failed or slow step is reported and the
others still run; the report goes to the right section and never into BENCHMARKS.md from a test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import (
    REHEARSAL_SECTION,
    SECTION,
    STEP_NAMES,
    STEPS,
    main,
    parse_args,
    render,
    run_step,
    section_name,
)

ROOT = Path(__file__).resolve().parents[2]


def _check(args: list[str], tmp_path: Path, timeout: float = 540) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--device", "cpu", "--quick", "--threads", "1",
         "--no-write", "--json", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
    return proc, json.loads(out.read_text())


@pytest.mark.slow
def test_the_quick_cpu_form_runs_every_step_and_leaves_benchmarks_md_alone(tmp_path):
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    proc, results = _check([], tmp_path)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert [s["name"] for s in results["steps"]] == list(STEP_NAMES)
    steps = {s["name"]: s for s in results["steps"]}
    assert {n: s["status"] for n, s in steps.items()} == dict.fromkeys(STEP_NAMES, "ok")
    assert all(0 < s["seconds"] <= s["limit_s"] for s in steps.values())

    counts = steps["tests"]["details"]["counts"]
    assert counts["passed"] >= 15 and "failed" not in counts and "error" not in counts

    amp = steps["amp"]["details"]["runs"]
    assert [r["amp_asked"] for r in amp] == [True, False]
    assert [r["amp"] for r in amp] == [False, False]  # the loop's autocast is CUDA-only

    models = steps["artist"]["details"]["models"]
    assert [m["model"] for m in models] == ["ddpm", "cfgdm", "fsdm"]
    # the full run's work as models.sample.plan_jobs counts it: 50 classes x 20 samples a scale,
    # four scales for the models with context dropout, w = 0 only for the DDPM
    assert [m["samples"] for m in models] == [1000, 4000, 4000]
    for m in models:
        assert m["full_steps"] == 30000 and m["s_per_step"] > 0 and m["steps_timed"] >= 2
        assert m["train_h"] == pytest.approx(30000 * m["s_per_step"] / 3600)
        assert set(m["batch_s"]) == ({"0.0"} if m["model"] == "ddpm" else {"0.0", "1.0"})
    total = sum(m["train_h"] + m["sampling_h"] for m in models)
    assert steps["artist"]["details"]["total_h"] == pytest.approx(total)

    ranks = steps["ddp"]["details"]["ranks"]
    assert [r["backend"] for r in ranks] == ["gloo", "gloo"] and all(r["teardown"] == "ok" for r in ranks)
    assert steps["maps"]["details"]["parity_rel"] == 0.0  # the CPU against itself
    assert steps["attribution-bench"]["details"]["table"].count("\n") == 4  # header, rule, 3 methods

    assert (ROOT / "BENCHMARKS.md").read_bytes() == before
    assert "wrote section" not in proc.stdout
    md = render(results)
    assert section_name(results) == REHEARSAL_SECTION and "**The full `artist` run, extrapolated**" in md


@pytest.mark.slow
def test_a_failed_step_is_reported_and_the_others_still_run(tmp_path):
    proc, results = _check(["--only", "env,amp,maps", "--data", str(tmp_path / "missing")], tmp_path, 240)
    assert proc.returncode == 1
    status = {s["name"]: s["status"] for s in results["steps"]}
    assert status == {"env": "ok", "amp": "failed", "maps": "ok"}
    amp = next(s for s in results["steps"] if s["name"] == "amp")
    assert "data.root" in amp["error"] or "missing" in amp["error"]
    assert "`amp` failed:" in render(results)


def test_a_step_past_its_limit_is_killed_and_reported(tmp_path):
    args = parse_args(["--device", "cpu", "--quick"])
    record = run_step(STEPS[0], args, limit_s=0.2)  # a Python start alone takes longer
    assert record["status"] == "timeout" and "0 s limit" in record["error"]
    assert record["seconds"] < 5


def _results(device: str, sizes: str, statuses: dict[str, str]) -> dict:
    steps = [{"name": n, "title": n, "status": st, "seconds": 1.0, "limit_s": 30,
              **({"summary": f"{n} fine", "details": {}} if st == "ok" else {"error": f"{n} broke\nline 2"})}
             for n, st in statuses.items()]
    for s in steps:
        if s["name"] == "env" and s["status"] == "ok":
            s["details"] = {"name": "NVIDIA H200", "torch": "2.11.0", "cuda": "13.0", "device": device,
                            "cudnn": 91000, "nccl": "2.27.3", "driver": "580", "memory_gib": 139.8,
                            "capability": "9.0", "multiprocessors": 132, "bf16": True}
    return {"command": "make gpu-check", "device_arg": device, "sizes": sizes, "budget_s": 480,
            "date": "2026-01-01 00:00 UTC", "total_s": 7.0, "steps": steps}


def test_only_the_cuda_form_at_full_size_writes_the_gpu_check_section():
    assert section_name(_results("cuda", "full", {"env": "ok"})) == SECTION
    assert section_name(_results("cuda:1", "full", {"env": "ok"})) == SECTION
    assert section_name(_results("cuda", "quick", {"env": "ok"})) == REHEARSAL_SECTION
    assert section_name(_results("cpu", "full", {"env": "ok"})) == REHEARSAL_SECTION


def test_the_report_names_the_machine_and_shows_each_failure():
    md = render(_results("cuda", "full", {"env": "ok", "tests": "ok", "ddp": "timeout", "maps": "failed"}))
    assert md.startswith("### GPU check (NVIDIA H200)")
    assert "2 of 4 steps passed" in md and "CUDA 13.0" in md and "NCCL 2.27.3" in md
    assert "| ddp | timeout | 1.0 | 30 | ddp broke |" in md
    assert "`maps` failed:\n\n```\nmaps broke\nline 2\n```" in md


def test_from_json_writes_the_section_into_the_file_it_is_given(tmp_path):
    saved, target = tmp_path / "gpu_check.json", tmp_path / "B.md"
    saved.write_text(json.dumps(_results("cuda", "full", {"env": "ok", "tests": "ok"})))
    target.write_text("# Benchmarks\n")
    assert main(["--from-json", str(saved), "--md", str(target)]) == 0
    text = target.read_text()
    assert text.startswith("# Benchmarks\n") and f"<!-- section:{SECTION} -->" in text
    assert "Command: `make gpu-check`" in text


def test_no_section_is_written_without_a_usable_device(tmp_path):
    saved, target = tmp_path / "gpu_check.json", tmp_path / "B.md"
    saved.write_text(json.dumps(_results("cuda", "full", {"env": "failed", "tests": "skipped"})))
    target.write_text("# Benchmarks\n")
    main(["--from-json", str(saved), "--md", str(target)])
    assert target.read_text() == "# Benchmarks\n"


def test_bad_options_are_refused():
    for argv in (["--only", "env,warp"], ["--only", ","], ["--budget", "0"]):
        with pytest.raises(SystemExit) as exc:
            parse_args(argv)
        assert exc.value.code == 2
