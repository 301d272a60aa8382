"""`python -m experiments demo`: the README's main job.

Trains the tiny models when no checkpoint exists (progress bars), makes the stimuli, trains the
ClickMe feedback classifier, creates the two demo studies (live) and a researcher account, and
serves the app (granian, study.serving) on 127.0.0.1, printing a participant link per study and the
dashboard link. Everything lives in data/demo/ (git-ignored); later runs reuse it. With Omniglot
at hand (experiments.demo_data) the same demo is built on it, in data/demo/omniglot/."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

from experiments import stages, studies
from experiments.demo_data import DemoData, check_root, choose_data, mark_root
from experiments.profiles import PROJECT_ROOT, load_profile
from experiments.server import free_port, serve_foreground, study_env, write_env
from study.serving import DEFAULT_SERVER

DEFAULT_ROOT = PROJECT_ROOT / "data" / "demo"
RESEARCHER_EMAIL = "researcher@demo.local"
SLUGS = ("demo-clickme", "demo-realfake")


class DemoError(ValueError):
    """The demo cannot be built (the message names the option or file)."""


def _logger() -> logging.Logger:
    log = logging.getLogger("experiments.demo")
    log.setLevel(logging.INFO)
    log.propagate = False
    h = logging.StreamHandler(sys.stderr)  # the current stderr (tests swap it)
    h.setFormatter(logging.Formatter("[demo] %(message)s"))
    log.handlers = [h]
    return log


def _researcher(site: studies.StudySite, root: Path) -> tuple[str, str]:
    """The demo researcher's (email, password): created once, kept in root/researcher.json
    (mode 0600) so later runs print the same login."""
    path = root / "researcher.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    email, password = site.ensure_researcher(RESEARCHER_EMAIL, stored.get("password"))
    if password is not None and password != stored.get("password"):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"email": email, "password": password}, fh)
    return email, password or stored.get("password", "(see data/demo/researcher.json)")


def build_demo(root: Path, device: torch.device, progress: bool = True, cache: Path | None = None,
               data: DemoData | None = None) -> dict:
    """Build (or reuse) everything the demo serves, on `data` (default: the embedded digits);
    returns what `run_demo` prints."""
    log = _logger()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = data or DemoData("digits", None, "default")
    log.info("data: %s", data.describe())
    profile = load_profile("tiny", None if data.root is None else str(data.root), data.overrides(), seed=0)
    cache = Path(cache).resolve() if cache else root / "cache"
    ckpts = stages.train_models(profile, cache, device, log, progress)
    manifest = stages.make_stimuli(profile, ckpts, cache, 0, device, log, progress)
    _train, heldout, _split = stages.split_data(profile.models[0])
    feedback = stages.train_feedback(profile, heldout, cache, 0, device, log)
    env = study_env(f"sqlite:///{root / 'study.db'}", root / "stimuli-store", root / "instance",
                    feedback_checkpoint=feedback)
    write_env(env, root / "server_env.json")
    site = studies.StudySite(env)
    plans = studies.study_plans(manifest, trials=12, n_clickme_images=24, n_realfake_images=48, seed=0,
                                prefix="demo", feedback_classifier=feedback)
    created = []
    for plan in plans:
        study, new = site.ensure_study(plan, manifest.parent)
        log.info("study %s: %s (%d stimuli)", study.slug, "created" if new else "reused", len(plan.rows))
        created.append(new)
    email, password = _researcher(site, root)
    return {"root": root, "env": env, "email": email, "password": password, "created": created,
            "checkpoints": ckpts, "manifest": manifest, "feedback": feedback, "data": data,
            "build_s": time.perf_counter() - t0}


def print_links(info: dict, url: str) -> None:
    print("\n=== diffusion-psychophysics demo ===")
    print(f"built in {info['build_s']:.0f} s; files in {info['root']}")
    print(f"data: {info['data'].describe()}")
    for slug in SLUGS:
        print(f"participant link ({slug.split('-')[1]}): {url}/s/{slug}?PROLIFIC_PID=demo-participant-1")
    print(f"researcher dashboard: {url}/researcher/  (log in as {info['email']} / {info['password']})")
    sys.stdout.flush()


def run_demo(root: Path | None = None, device: torch.device | None = None, serve: bool = True,
             port: int = 8000, workers: int = 2, progress: bool = True, cache: Path | None = None,
             dataset: str = "auto") -> int:
    """`dataset`: auto (Omniglot when at hand, else the digits), digits or omniglot."""
    data = choose_data(dataset)
    root = Path(root).resolve() if root else DEFAULT_ROOT if data.dataset == "digits" else DEFAULT_ROOT / data.dataset
    if root.exists() and not root.is_dir():
        raise DemoError(f"--root: {root} is a file, not a folder")
    check_root(root, data)
    mark_root(root, data)
    device = device or torch.device("cpu")
    info = build_demo(root, device, progress, cache, data)
    chosen = free_port(port)
    url = f"http://127.0.0.1:{chosen}"
    if chosen != port:
        print(f"port {port} is taken; using {chosen}")
    print_links(info, url)
    if not serve:
        print("(--no-serve: not serving; run `python -m experiments demo` to serve)")
        return 0
    print(f"serving with {DEFAULT_SERVER} ({workers} workers) on {url}; Ctrl-C stops it\n")
    sys.stdout.flush()
    return serve_foreground(info["env"], chosen, workers)
