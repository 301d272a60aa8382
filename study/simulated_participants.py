"""Simulated participants that do a study through the real HTTP API (docs/formats.md section 2).

Used for demos, load runs (benchmarks/bench_study.py) and analysis recovery checks: the
behaviours have known ground truth.

- `accurate`: always right (real-or-fake); ClickMe clicks uniform over the image.
- `random`: a coin flip per real-or-fake trial; uniform ClickMe clicks.
- `observer`: a signal-detection observer ("fake" is the signal): evidence ~ N(+d'/2, 1) on fakes,
  N(-d'/2, 1) on reals, answers "fake" when evidence > criterion; so H = Phi(d'/2 - c),
  F = Phi(-d'/2 - c) and the analysis should give back d' and c.
- `clicker`: ClickMe clicks drawn from a known importance map, the stimulus's ink (bright pixels
  of ink-on-black images; dark pixels when the background is light), probability proportional to
  ink; real-or-fake answers as `accurate`.
- `dropout`: random answers; a share `dropout_rate` of participants quit at a random trial and
  never complete.

Ground truth (is a stimulus real or model-made) comes from a table keyed by the sha256 of the
bytes a participant receives, built from the study's Stimulus rows and display settings
(`truth_from_db`); the simulator fetches each image once over HTTP and hashes it, so it works
whatever URL scheme the server uses.

Every response carries a client-made UUID and is retried with the same UUID on network errors and
5xx answers, as the browser does; a 200 for a repeated UUID counts as confirmed once.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from study.participation import scoring
from study.validation import PLATFORMS

BEHAVIOURS = ("accurate", "random", "observer", "clicker", "dropout")
_SHA_IN_URL = re.compile(r"([0-9a-f]{64})")


@dataclass(frozen=True)
class StimulusTruth:
    stimulus_id: str
    source: str  # real | model
    class_label: str


@dataclass
class SimulationConfig:
    """What the simulated participants do; validated by `check()` with messages naming fields."""

    behaviour: str = "random"
    n: int = 10
    concurrency: int = 10
    seed: int = 0
    dprime: float = 1.5
    criterion: float = 0.0
    dropout_rate: float = 0.5
    platform: str = "prolific"
    timeout_s: float = 30.0
    max_retries: int = 8
    rt_ms_mean: float = 700.0
    clicks_per_trial: int | None = None  # default: max(min_clicks, 10) within the budget
    fetch_images: bool | None = None  # default: only when the behaviour needs them

    def check(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour: must be one of {', '.join(BEHAVIOURS)} (got {self.behaviour!r})")
        if self.n < 1:
            raise ValueError("n: must be at least 1")
        if self.concurrency < 1:
            raise ValueError("concurrency: must be at least 1")
        if not 0.0 <= self.dropout_rate <= 1.0:
            raise ValueError("dropout_rate: must lie within [0, 1]")
        if not math.isfinite(self.dprime) or not math.isfinite(self.criterion):
            raise ValueError("dprime/criterion: must be finite numbers")
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform: must be one of {', '.join(PLATFORMS)}")


@dataclass
class SimulationResult:
    participants: int = 0
    started: int = 0
    completed: int = 0
    dropped: int = 0
    sent: int = 0  # distinct responses (client UUIDs) the participants tried to store
    confirmed: int = 0  # of those, acknowledged by the server (201, or 200 for a repeat)
    repeats_acknowledged: int = 0  # retries answered 200 with the stored result
    retries: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # one per confirmed submission
    confirmed_uuids: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else None
        return {
            "participants": self.participants, "started": self.started,
            "completed": self.completed, "dropped": self.dropped, "sent": self.sent,
            "confirmed": self.confirmed, "repeats_acknowledged": self.repeats_acknowledged,
            "retries": self.retries, "errors": self.errors,
            "wall_s": round(self.wall_s, 3),
            "submissions_per_s": round(self.confirmed / self.wall_s, 1) if self.wall_s else None,
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat is not None else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat is not None else None,
            "first_errors": self.error_messages[:5],
        }


class _Shared:
    """State shared by the participant threads: counters, the image cache."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.result = SimulationResult()
        self.images: dict[str, tuple[str, np.ndarray | None]] = {}

    def add(self, **counts: int) -> None:
        with self.lock:
            for k, v in counts.items():
                setattr(self.result, k, getattr(self.result, k) + v)

    def error(self, message: str) -> None:
        with self.lock:
            self.result.errors += 1
            if len(self.result.error_messages) < 20:
                self.result.error_messages.append(message)

    def confirmed(self, client_uuid: str, latency_ms: float, repeat: bool) -> None:
        with self.lock:
            r = self.result
            r.confirmed += 1
            r.repeats_acknowledged += int(repeat)
            r.latencies_ms.append(latency_ms)
            r.confirmed_uuids.append(client_uuid)


def _ink_map(png: bytes) -> np.ndarray | None:
    """The importance map of an image: its ink in [0, 1], shape (H, W)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as img:
            grey = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    except OSError:
        return None
    if grey.mean() > 0.5:  # light background: the ink is dark
        grey = 1.0 - grey
    return grey


def importance_clicks(ink: np.ndarray, n: int, rng: random.Random) -> list[dict[str, float]]:
    """`n` click points drawn with probability proportional to `ink` (H, W); x, y in [0, 1]."""
    h, w = ink.shape
    weights = ink.ravel() + 1e-9
    idx = rng.choices(range(h * w), weights=weights.tolist(), k=n)
    out, t = [], 0.0
    for order, i in enumerate(idx):
        row, col = divmod(i, w)
        t += rng.uniform(30, 120)
        out.append({"x": (col + rng.random()) / w, "y": (row + rng.random()) / h, "t": t, "stroke": order})
    return out


def _uniform_clicks(n: int, rng: random.Random) -> list[dict[str, float]]:
    t = 0.0
    out = []
    for order in range(n):
        t += rng.uniform(30, 120)
        out.append({"x": rng.random(), "y": rng.random(), "t": t, "stroke": order})
    return out


class _Participant:
    def __init__(self, i: int, client: httpx.Client, slug: str, cfg: SimulationConfig,
                 truth: dict[str, StimulusTruth], shared: _Shared) -> None:
        self.i = i
        self.client = client
        self.slug = slug
        self.cfg = cfg
        self.truth = truth
        self.shared = shared
        self.rng = random.Random(f"{cfg.seed}:{i}")
        self.headers: dict[str, str] = {}

    # -- HTTP with retries (network errors and 5xx; never on 4xx) --
    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        delay = 0.05
        for attempt in range(self.cfg.max_retries + 1):
            try:
                resp = self.client.request(method, path, headers=self.headers, **kwargs)
            except httpx.HTTPError as exc:
                failure = f"{method} {path}: {type(exc).__name__}"
            else:
                if resp.status_code < 500:
                    return resp
                failure = f"{method} {path}: HTTP {resp.status_code}"
            if attempt == self.cfg.max_retries:
                self.shared.error(failure)
                return None
            self.shared.add(retries=1)
            time.sleep(delay * (1 + self.rng.random()))
            delay = min(delay * 2, 2.0)
        return None

    def _start(self) -> dict[str, Any] | None:
        tag = f"sim{self.cfg.seed}-{self.i}-{uuid.uuid4().hex[:8]}"
        # A desktop browser's report, for studies with a window or screen minimum (devices).
        screen = {"viewport_width": 1280, "viewport_height": 800, "screen_width": 1920,
                  "screen_height": 1080, "touch_points": 0}
        body: dict[str, Any] = {"platform": self.cfg.platform, "consent": True, "screen": screen}
        if self.cfg.platform == "prolific":
            body.update(PROLIFIC_PID=tag, STUDY_ID="sim-study", SESSION_ID=f"sess-{tag}")
        elif self.cfg.platform == "mturk":
            body.update(workerId=tag, assignmentId=f"as-{tag}", hitId="sim-hit")
        resp = self._call("POST", f"/api/v1/studies/{self.slug}/participants", json=body)
        if resp is None:
            return None
        if resp.status_code != 201:
            self.shared.error(f"start: HTTP {resp.status_code} {resp.text[:200]}")
            return None
        data = resp.json()
        self.headers = {"X-Participant-Token": data["token"]}
        return data

    def _image(self, url: str) -> tuple[StimulusTruth | None, np.ndarray | None]:
        cache = self.shared.images
        if url not in cache:
            match = _SHA_IN_URL.search(url)
            need_pixels = self.cfg.behaviour == "clicker"
            if match and match.group(1) in self.truth and not need_pixels:
                cache[url] = (match.group(1), None)
            else:
                resp = self._call("GET", url)
                if resp is None or resp.status_code != 200:
                    return None, None
                cache[url] = (hashlib.sha256(resp.content).hexdigest(), _ink_map(resp.content))
        sha, ink = cache[url]
        return self.truth.get(sha), ink

    def _needs_image(self, task: str) -> bool:
        if self.cfg.fetch_images is not None:
            return self.cfg.fetch_images
        if task == "clickme":
            return self.cfg.behaviour == "clicker"
        return self.cfg.behaviour in ("accurate", "observer", "clicker")

    def _answer(self, trial: dict[str, Any], truth: StimulusTruth | None) -> tuple[str, int | None]:
        b = self.cfg.behaviour
        is_fake = scoring.truth(truth.source) == "fake" if truth is not None else None
        conf_settings = (trial.get("settings") or {}).get("confidence")
        confidence = None
        if b in ("accurate", "clicker") and is_fake is not None:
            answer = "fake" if is_fake else "real"
            strength = 3.0
        elif b == "observer" and is_fake is not None:
            mean = self.cfg.dprime / 2 if is_fake else -self.cfg.dprime / 2
            evidence = self.rng.gauss(mean, 1.0)
            answer = "fake" if evidence > self.cfg.criterion else "real"
            strength = abs(evidence - self.cfg.criterion)
        else:
            answer = self.rng.choice(("real", "fake"))
            strength = self.rng.random() * 2
        s = trial.get("settings") or {}
        if isinstance(conf_settings, dict):  # {"enabled", "min", "max"} or flat keys
            enabled, lo, hi = conf_settings.get("enabled"), conf_settings.get("min", 1), conf_settings.get("max", 4)
        else:
            enabled, lo, hi = conf_settings, s.get("confidence_min", 1), s.get("confidence_max", 4)
        if enabled:
            lo, hi = int(lo), int(hi)
            confidence = max(lo, min(hi, lo + int(strength / 2.5 * (hi - lo + 1))))
        return answer, confidence

    def _clicks(self, trial: dict[str, Any], ink: np.ndarray | None) -> list[dict[str, float]]:
        s = trial.get("settings") or {}
        lo, budget = int(s.get("min_clicks", 5)), int(s.get("click_budget", 200))
        n = self.cfg.clicks_per_trial or max(lo, 10)
        n = max(lo, min(budget, n))
        if self.cfg.behaviour == "clicker" and ink is not None:
            return importance_clicks(ink, n, self.rng)
        return _uniform_clicks(n, self.rng)

    def _submit(self, trial: dict[str, Any]) -> bool:
        task = trial.get("task", "realfake")
        truth, ink = (None, None)
        if self._needs_image(task) and trial.get("image_url"):
            truth, ink = self._image(trial["image_url"])
        rt = max(150.0, self.rng.lognormvariate(math.log(self.cfg.rt_ms_mean), 0.35))
        body: dict[str, Any] = {
            "client_uuid": str(uuid.uuid4()),
            "trial_id": trial["id"],
            "rt_ms": round(rt, 1),
            "client_sent_at": time.time() * 1000,
        }
        if trial.get("exposure_ms") is not None:
            body["exposure_ms"] = trial["exposure_ms"]
        if task == "clickme":
            body["clicks"] = self._clicks(trial, ink)
        else:
            body["answer"], confidence = self._answer(trial, truth)
            if confidence is not None:
                body["confidence"] = confidence
        self.shared.add(sent=1)
        t0 = time.perf_counter()
        resp = self._call("POST", "/api/v1/participant/responses", json=body)
        latency = (time.perf_counter() - t0) * 1000
        if resp is None:
            return False
        if resp.status_code in (200, 201):
            self.shared.confirmed(body["client_uuid"], latency, repeat=resp.status_code == 200)
            return True
        self.shared.error(f"response: HTTP {resp.status_code} {resp.text[:200]}")
        return False

    def run(self) -> None:
        self.shared.add(participants=1)
        start = self._start()
        if start is None:
            return
        self.shared.add(started=1)
        n_trials = int(start.get("n_trials") or 0)
        quit_at = None
        if self.cfg.behaviour == "dropout" and self.rng.random() < self.cfg.dropout_rate and n_trials > 1:
            quit_at = self.rng.randint(1, n_trials - 1)
        done = 0
        while True:
            if quit_at is not None and done >= quit_at:
                self.shared.add(dropped=1)
                return
            resp = self._call("GET", "/api/v1/participant/trial")
            if resp is None:
                return
            if resp.status_code != 200:
                self.shared.error(f"trial: HTTP {resp.status_code} {resp.text[:200]}")
                return
            data = resp.json()
            if data.get("done"):
                break
            if not self._submit(data["trial"]):
                return
            done += 1
        resp = self._call("POST", "/api/v1/participant/complete", json={})
        if resp is None:
            return
        if resp.status_code != 200:
            self.shared.error(f"complete: HTTP {resp.status_code} {resp.text[:200]}")
            return
        self.shared.add(completed=1)


def run_simulation(
    base_url: str,
    slug: str,
    cfg: SimulationConfig,
    truth: dict[str, StimulusTruth] | None = None,
) -> SimulationResult:
    """Run `cfg.n` participants, `cfg.concurrency` at a time, against the server at `base_url`."""
    cfg.check()
    truth = truth or {}
    shared = _Shared()
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    t0 = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=cfg.timeout_s, limits=limits) as client:
        with ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="sim") as pool:
            futures = [
                pool.submit(_Participant(i, client, slug, cfg, truth, shared).run) for i in range(cfg.n)
            ]
            for fut in futures:
                try:
                    fut.result()
                except Exception as exc:  # a bug in one participant must not hide the others' counts
                    shared.error(f"participant crashed: {type(exc).__name__}: {exc}")
    shared.result.wall_s = time.perf_counter() - t0
    return shared.result


def truth_from_db(session: Any, study_id: int, stimuli_root: str | Path | None = None) -> dict[str, StimulusTruth]:
    """The ground-truth table {sha256: StimulusTruth} of a study's stimuli, keyed by the stored
    files' sha256 and, with `stimuli_root`, also by the sha256 of each image as the study and
    each of its conditions display it (study/display.py; the renderings are cached as the
    server would cache them)."""
    from sqlalchemy import select

    from study.display import displayed_file
    from study.settings import StudySettings
    from study.tables import Condition, Stimulus, Study

    rows = session.execute(
        select(Stimulus.sha256, Stimulus.path, Stimulus.stimulus_key, Stimulus.source, Stimulus.class_label)
        .where(Stimulus.study_id == study_id)
    ).all()
    truth = {sha: StimulusTruth(key, source, label) for sha, _, key, source, label in rows}
    if stimuli_root is None:
        return truth
    base = StudySettings.from_dict(session.get(Study, study_id).settings)
    overrides = session.scalars(select(Condition.settings).where(Condition.study_id == study_id)).all()
    displays = {base.display} | {base.merged(o).display for o in overrides}
    root = Path(stimuli_root)
    for sha, path, key, source, label in rows:
        for display in displays:
            shown = displayed_file(root / path, sha, root, display)
            truth[hashlib.sha256(shown.read_bytes()).hexdigest()] = StimulusTruth(key, source, label)
    return truth
