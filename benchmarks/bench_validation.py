"""Request validation on the response hot path: server CPU per submission, A/B, and what a
validation library would add.

    python -m benchmarks validation --old DIR_OR_REF [--new DIR_OR_REF] [--rounds 12]
                                    [--batches 15] [--batch 20] [--cpu 0] [--libs] [--no-write]

A/B: per round, a worker subprocess per tree (that tree first on its path) builds a SQLite
database with a live real-or-fake and a live ClickMe study (benchmarks/servers.py make_study of
that tree) and starts participants; then both post answers, trial by trial, through Flask's
test client (the whole WSGI stack: routing, JSON, validation, storage, reply) in batches that
alternate between old and new. Both are pinned to one core and share a hash seed. CPU time
(process_time) per submission, a side's median batch per round; the ratio new/old is taken per
round (fresh processes every round) and summarised by its median with a bootstrap interval. Each worker also times the
validation calls alone (get_uuid, get_int, get_number, get_str / parse_clicks, as the views make
them for one answer), which a shared machine's noise does not drown. A git ref is exported with
`git archive` to a temporary folder.

--libs: the same ResponseRequest body posted to a minimal Flask app whose one view validates it
(a) field by field with study.validation's get_* (what the views do), (b) with
ResponseRequest.model_validate_json, (c) through spectree, (d) flask-openapi3 or (e) APIFlask
(each where installed: pip install spectree flask-openapi3 apiflask), against (0) a view that
parses the JSON and validates nothing. Reported: CPU per request and the cost over (0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "validation-worker:"
TASKS = ("realfake", "clickme")


# ---------------------------------------------------------------- the A/B worker (one tree)


def _rows(db: Path, slug: str) -> list[tuple[str, int, str]]:
    """(token, trial id, task) of every trial of the study's participants, in answer order."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute(
            'SELECT p.token, t.id, s.task FROM trials t JOIN participants p ON p.id = t.participant_id '
            'JOIN studies s ON s.id = p.study_id WHERE s.slug = ? ORDER BY t."index", p.id',
            (slug,),
        ).fetchall()


def _answer(task: str, trial_id: int, k: int) -> dict:
    body = {"client_uuid": str(uuid.uuid4()), "trial_id": trial_id, "rt_ms": 500.0 + k % 300,
            "client_sent_at": 1.7e12 + k}
    if task == "clickme":
        body["clicks"] = [{"x": (i % 10) / 10, "y": (i % 7) / 7, "t": 40.0 * i, "stroke": i // 4}
                          for i in range(12)]
    else:
        body["answer"] = "fake" if k % 2 else "real"
    return body


def _validation_only(n: int) -> dict[str, float]:
    """CPU µs of the validation calls alone for one answer of each task, as the views make them
    (the functions and their signatures are the same in both trees)."""
    from study.validation import get_int, get_number, get_str, get_uuid, parse_clicks

    bodies = {task: _answer(task, 17, 3) for task in TASKS}

    def common(body: dict) -> None:
        get_uuid(body, "client_uuid")
        get_int(body, "trial_id", required=True, lo=1, field="trial_id")
        get_number(body, "rt_ms", required=True)
        get_number(body, "exposure_ms")
        get_number(body, "client_sent_at", hi=1e14)

    def realfake() -> None:
        body = bodies["realfake"]
        common(body)
        get_str(body, "answer", required=True, choices=("real", "fake"))
        get_int(body, "confidence", lo=1, hi=4)

    def clickme() -> None:
        body = bodies["clickme"]
        common(body)
        parse_clicks(body["clicks"], budget=30)

    out = {}
    for task, call in (("realfake", realfake), ("clickme", clickme)):
        call()
        start = time.process_time()
        for _ in range(n):
            call()
        out[task] = (time.process_time() - start) / n * 1e6
    return out


def worker(participants: int, trials: int) -> None:
    """Serve batches for the parent: set up this tree's app and studies, print READY, then for
    each stdin line `TASK N` post the next N answers of that study and print their CPU seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        _serve(Path(tmp), participants, trials)


def _serve(work: Path, participants: int, trials: int) -> None:
    from benchmarks.servers import make_study
    from study import create_app

    db = work / "bench.sqlite"
    url = f"sqlite:///{db}"
    queues, clients, apps = {}, {}, []
    for task in TASKS:
        slug = make_study(url, work / task, trials, task=task, slug=task)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "FEEDBACK_CLASSIFIER": None,
                          "STIMULI_ROOT": str(work / task / "store")})
        apps.append(app)
        client = app.test_client()
        for _ in range(participants):
            res = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True})
            assert res.status_code == 201, res.get_data(as_text=True)
        clients[task] = app.test_client()  # no cookie: every call identifies itself by its token
        queues[task] = iter([(token, json.dumps(_answer(task, tid, k)).encode())
                             for k, (token, tid, _) in enumerate(_rows(db, slug))])
    print(MARK + "READY", flush=True)
    for line in sys.stdin:
        task, n = line.split()
        if task == "validation":
            print(MARK + json.dumps(_validation_only(int(n))), flush=True)
            continue
        client = clients[task]
        batch = [next(queues[task]) for _ in range(int(n))]
        start = time.process_time()
        for token, body in batch:
            res = client.post("/api/v1/participant/responses", data=body,
                              headers={"Content-Type": "application/json", "X-Participant-Token": token})
            if res.status_code != 201:
                raise RuntimeError(f"{task}: {res.status_code} {res.get_data(as_text=True)[:200]}")
        print(MARK + json.dumps(time.process_time() - start), flush=True)
    for app in apps:
        app.extensions["sqlalchemy_engine"].dispose()


def _tree(spec: str, tmp: Path, name: str) -> Path:
    """A folder as given, or a git ref exported to tmp/name."""
    path = Path(spec)
    if path.is_dir():
        return path.resolve()
    target = tmp / name
    target.mkdir()
    archive = subprocess.run(["git", "archive", spec], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


class _Side:
    """A worker subprocess with `tree` first on its path."""

    def __init__(self, tree: Path, participants: int, trials: int, cpu: int | None) -> None:
        # One hash seed for both sides: string hashing sets dict layouts, worth a few % of CPU.
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        code = (f"import sys; sys.path[:0] = [{str(tree)!r}, {str(ROOT / 'benchmarks')!r}]; "
                f"from bench_validation import worker; worker({participants}, {trials})")
        self.tree = tree
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=tree, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if cpu is not None:
            # Both sides on one core: on a shared machine a process that lands on the busier
            # core spends more CPU time on the same work (an A/A run measured 6% between sides).
            os.sched_setaffinity(self.proc.pid, {cpu})
        self._read()

    def _read(self) -> str:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return line[len(MARK):].strip()
        raise RuntimeError(f"the worker in {self.tree} stopped (exit {self.proc.wait()})")

    def batch(self, task: str, n: int) -> float:
        self.proc.stdin.write(f"{task} {n}\n")
        self.proc.stdin.flush()
        return float(self._read())

    def validation(self, n: int) -> dict[str, float]:
        self.proc.stdin.write(f"validation {n}\n")
        self.proc.stdin.flush()
        return json.loads(self._read())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _median_ci(values: list[float], seed: int = 0, n_boot: int = 2000) -> tuple[float, float, float]:
    """Median and its 95% bootstrap interval."""
    import numpy as np

    arr = np.asarray(values)
    rng = np.random.default_rng(seed)
    boots = np.median(rng.choice(arr, size=(n_boot, arr.size)), axis=1)
    return float(np.median(arr)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def ab(old: Path, new: Path, rounds: int, batches: int, batch: int, cpu: int | None) -> dict:
    """Per round, fresh worker processes for both trees (so that whatever favours one process
    over another, memory layout or where its database file lies, varies from round to round),
    one warm-up batch each, then `batches` batches per task alternating old/new with the order
    flipped every batch, so that the shared machine's drift hits both alike. A round's ratio is
    new / old of the sides' median batches; the summary is the median over rounds with a
    bootstrap interval over rounds."""
    trials = 30
    participants = -(-(batches + 1) * batch // trials)
    per_round: list[dict[str, dict[str, float]]] = []
    for r in range(rounds):
        names = ("old", "new") if r % 2 == 0 else ("new", "old")
        trees = {"old": old, "new": new}
        sides = {name: _Side(trees[name], participants, trials, cpu) for name in names}
        got: dict[str, dict[str, list[float]]] = {name: {t: [] for t in TASKS} for name in sides}
        try:
            for task in TASKS:
                for side in sides.values():
                    side.batch(task, batch)  # warm-up
                for b in range(batches):
                    for name in names if b % 2 == 0 else names[::-1]:
                        got[name][task].append(sides[name].batch(task, batch))
            alone = {name: sides[name].validation(20_000) for name in names}
        finally:
            for side in sides.values():
                side.close()
        # A side's round: its median batch (a batch that shared the core with a burst of other
        # work counts no more than any other).
        per_round.append({name: {t: statistics.median(got[name][t]) / batch * 1e6 for t in TASKS}
                          for name in got})
        for name in names:
            per_round[-1][name].update({f"{t}_validation": us for t, us in alone[name].items()})
        now = per_round[-1]
        print(f"round {r + 1}: " + "; ".join(
            f"{t} old {now['old'][t]:.0f} µs, new {now['new'][t]:.0f} µs, "
            f"new/old {now['new'][t] / now['old'][t]:.3f}" for t in TASKS), flush=True)
    summary = {}
    for task in TASKS:
        median, lo, hi = _median_ci([g["new"][task] / g["old"][task] for g in per_round])
        alone = {name: statistics.median(g[name][f"{task}_validation"] for g in per_round)
                 for name in ("old", "new")}
        summary[task] = {
            "old_us": statistics.median(g["old"][task] for g in per_round),
            "new_us": statistics.median(g["new"][task] for g in per_round),
            "rounds": rounds, "submissions": rounds * batches * batch,
            "ratio_median": median, "ratio_lo": lo, "ratio_hi": hi,
            "old_validation_us": alone["old"], "new_validation_us": alone["new"],
        }
    return {"rounds": per_round, "summary": summary}


# ---------------------------------------------------------------- validation libraries


def _library_apps() -> dict[str, object]:
    """One minimal app per approach, each with POST /r validating a ResponseRequest body."""
    from flask import Flask, jsonify, request
    from pydantic import ValidationError

    from study.errors import ApiError, register
    from study.validation import (
        ResponseRequest,
        body_error,
        get_int,
        get_number,
        get_str,
        get_uuid,
        json_object,
    )

    apps: dict[str, object] = {}

    def plain(name: str) -> Flask:
        app = Flask(name)
        register(app)
        return app

    bare = plain("bare")

    @bare.post("/r")
    def bare_view():
        json_object()
        return jsonify(ok=True)

    apps["(0) JSON only, no validation"] = bare

    fields = plain("fields")

    @fields.post("/r")
    def fields_view():
        body = json_object()
        get_uuid(body, "client_uuid")
        get_int(body, "trial_id", required=True, lo=1)
        get_number(body, "rt_ms", required=True)
        get_number(body, "exposure_ms")
        get_number(body, "client_sent_at", hi=1e14)
        get_str(body, "answer", required=True, choices=("real", "fake"))
        return jsonify(ok=True)

    apps["(a) get_* per field (the views)"] = fields

    whole = plain("whole")

    @whole.post("/r")
    def whole_view():
        if request.mimetype != "application/json":
            raise ApiError(415, "Content-Type must be application/json", "Content-Type")
        try:
            ResponseRequest.model_validate_json(request.get_data(cache=True))
        except ValidationError as exc:
            raise body_error(exc, root=ResponseRequest) from None
        return jsonify(ok=True)

    apps["(b) model_validate_json"] = whole

    try:
        from spectree import SpecTree
    except ImportError:
        print("spectree is not installed: skipped")
    else:
        app = plain("spectree")
        spec = SpecTree("flask", app=app)

        @app.post("/r")
        @spec.validate(json=ResponseRequest)
        def spectree_view():
            return jsonify(ok=True)

        apps["(c) spectree"] = app

    try:
        from flask_openapi3 import OpenAPI
    except ImportError:
        print("flask-openapi3 is not installed: skipped")
    else:
        app = OpenAPI("openapi3", doc_ui=False)
        register(app)

        def openapi3_view(body):
            return jsonify(ok=True)

        # flask-openapi3 reads the body's model from the annotation (a string in this module)
        openapi3_view.__annotations__ = {"body": ResponseRequest}
        app.post("/r")(openapi3_view)
        apps["(d) flask-openapi3"] = app

    try:
        from apiflask import APIFlask
    except ImportError:
        print("APIFlask is not installed: skipped")
    else:
        app = APIFlask("apiflask", spec_path=None, docs_path=None)
        register(app)

        @app.post("/r")
        @app.input(ResponseRequest, location="json")
        def apiflask_view(json_data):
            return jsonify(ok=True)

        apps["(e) APIFlask"] = app
    return apps


def libraries(rounds: int, requests: int) -> dict[str, float]:
    """Median CPU µs per request of each approach (rounds alternate between the apps)."""
    body = json.dumps(_answer("realfake", 7, 1)).encode()
    bad = json.dumps({**_answer("realfake", 7, 1), "rt_ms": -1}).encode()
    apps = _library_apps()
    clients = {name: app.test_client() for name, app in apps.items()}
    for name, client in clients.items():
        ok = client.post("/r", data=body, headers={"Content-Type": "application/json"})
        refused = client.post("/r", data=bad, headers={"Content-Type": "application/json"})
        assert ok.status_code == 200, (name, ok.get_data(as_text=True))
        assert name.startswith("(0)") or refused.status_code >= 400, (name, refused.status_code)
    times: dict[str, list[float]] = {name: [] for name in clients}
    for r in range(rounds):
        names = list(clients) if r % 2 == 0 else list(reversed(clients))
        for name in names:
            client = clients[name]
            start = time.process_time()
            for _ in range(requests):
                client.post("/r", data=body, headers={"Content-Type": "application/json"})
            times[name].append((time.process_time() - start) / requests * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


# ---------------------------------------------------------------- main


def render(result: dict, args: argparse.Namespace) -> str:
    from benchmarks.report import markdown_table

    lines = ["### Request validation: server CPU per submission (pydantic), A/B", "",
             f"Command: `{result['command']}`. {result['cpus']} CPUs, load average "
             f"{result['load_before'][0]:.1f} before and {result['load_after'][0]:.1f} after (shared "
             "machine: compare the two sides within a round, not across runs).", ""]
    if "ab" in result:
        lines += [f"A/B on SQLite: per round, a fresh worker process per tree with a live real-or-fake "
                  "and a live ClickMe study; every answer posted through Flask's test client; one "
                  f"warm-up batch, then {args.batches} batches of {args.batch} submissions per task "
                  f"alternating old/new, both pinned to CPU {args.cpu}. CPU time per submission of a "
                  f"side's median batch; medians over {args.rounds} rounds, the ratio's interval by "
                  "bootstrap over rounds. "
                  f"old = `{args.old}`, new = `{args.new}`.", ""]
        rows = []
        for task, s in result["ab"]["summary"].items():
            extra = s["new_validation_us"] - s["old_validation_us"]
            rows.append([task, s["submissions"], f"{s['old_us']:.0f}", f"{s['new_us']:.0f}",
                         f"**{s['ratio_median']:.3f}** ({s['ratio_lo']:.3f}-{s['ratio_hi']:.3f})",
                         f"{s['old_validation_us']:.1f}", f"{s['new_validation_us']:.1f}",
                         f"{extra:+.1f} µs = {extra / s['old_us']:+.2%}"])
        lines += [markdown_table(["study", "submissions per side", "old µs/submission",
                                  "new µs/submission", "new/old (95% CI)",
                                  "old validation µs", "new validation µs",
                                  "validation change / old submission"], rows), ""]
    if "libraries" in result:
        libs = result["libraries"]
        base = next(v for k, v in libs.items() if k.startswith("(0)"))
        lines += ["Validation libraries: the same real-or-fake ResponseRequest body posted to a minimal "
                  f"Flask app per approach; {args.lib_requests} requests per round, {args.rounds} rounds "
                  "alternating; median CPU per request.", ""]
        lines += [markdown_table(["approach", "µs/request", "over JSON only"],
                                 [[k, f"{v:.1f}", f"+{v - base:.1f}"] for k, v in libs.items()]), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks validation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", help="the tree to compare against: a folder or a git ref (A/B skipped without)")
    ap.add_argument("--new", default=str(ROOT), help="the tree measured: a folder or a git ref (default: this one)")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--batches", type=int, default=15, help="batches per task per round (A/B)")
    ap.add_argument("--batch", type=int, default=20, help="submissions per alternation (A/B)")
    ap.add_argument("--cpu", type=int, default=0, help="the core both A/B workers run on (-1: any)")
    ap.add_argument("--libs", action="store_true", help="also compare validation libraries")
    ap.add_argument("--lib-requests", type=int, default=3000)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    if not args.old and not args.libs:
        ap.error("nothing to do: give --old for the A/B run and/or --libs")
    result: dict = {"command": "python -m benchmarks validation " + " ".join(argv),
                    "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    if args.old:
        with tempfile.TemporaryDirectory() as tmp:
            old = _tree(args.old, Path(tmp), "old")
            new = _tree(args.new, Path(tmp), "new")
            result["ab"] = ab(old, new, args.rounds, args.batches, args.batch,
                              None if args.cpu < 0 else args.cpu)
    if args.libs:
        result["libraries"] = libraries(args.rounds, args.lib_requests)
    result["load_after"] = os.getloadavg()
    text = render(result, args)
    print(text)
    if not args.no_write:
        from benchmarks.report import write_section

        write_section("validation", text)
    return 0
