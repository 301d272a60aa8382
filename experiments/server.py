"""Serve the study app on 127.0.0.1 (study.serving: granian by default): as a managed background
process (pipelines, tests) or in the foreground (the demo). The app reads its database, stimulus store and secret
from the environment (study.config), so the same `wsgi:app` serves any run's database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from experiments.profiles import PROJECT_ROOT


@contextmanager
def app_environment(env: dict[str, str]) -> Iterator[None]:
    """Set `env` in os.environ for the block (study.create_app reads it), then restore."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def study_env(database_url: str, stimuli_root: Path, instance: Path,
              feedback_checkpoint: Path | None = None) -> dict[str, str]:
    """The environment variables that point the app at one run's database and files.

    study.feedback only loads a study's feedback_classifier from under FEEDBACK_CLASSIFIER_DIR
    (loading unpickles it), so a run that built a feedback checkpoint passes it here and the app
    may use the folder holding it; without that the ClickMe study would run without feedback."""
    instance, stimuli_root = instance.resolve(), stimuli_root.resolve()  # Flask wants absolute
    instance.mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": database_url,
        "STIMULI_ROOT": str(stimuli_root),
        "STUDY_INSTANCE_PATH": str(instance),
    }
    if feedback_checkpoint is not None:
        env["FEEDBACK_CLASSIFIER_DIR"] = str(Path(feedback_checkpoint).resolve().parent)
    return env


def write_env(env: dict[str, str], path: Path) -> Path:
    """Save the environment a run serves its studies with (no secrets: the app keeps its key in
    the instance folder), so the same studies can be served again: `env $(...) python -m study serve`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(env, indent=1, sort_keys=True) + "\n")
    return path


def free_port(preferred: int | None = None) -> int:
    """`preferred` when it is free on 127.0.0.1, else a port the OS picks."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def server_command(port: int, workers: int, env: dict[str, str], access_log: bool = False) -> list[str]:
    """The default server (study.serving) on 127.0.0.1:`port` with `workers` processes, each with
    the threads study.config.server_concurrency gives `env`'s database."""
    from study.serving import DEFAULT_SERVER, default_sizing
    from study.serving import server_command as command

    _workers, threads = default_sizing(env.get("DATABASE_URL"))
    return command(DEFAULT_SERVER, "127.0.0.1", port, workers, threads, access_log=access_log)


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout_s: float = 60.0) -> None:
    """Poll `url/healthz` until it answers 200; raise RuntimeError if the server died or timed out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before serving {url}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not answer /healthz within {timeout_s:.0f} s")


@contextmanager
def serve(env: dict[str, str], workers: int = 2, log_path: Path | None = None,
          port: int | None = None) -> Iterator[str]:
    """Run the server in the background for the block; yields its base URL and stops it after."""
    port = free_port(port)
    url = f"http://127.0.0.1:{port}"
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(server_command(port, workers, env, access_log=True), env={**os.environ, **env},
                            stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


def serve_foreground(env: dict[str, str], port: int, workers: int = 2) -> int:
    """Run the server in the foreground until Ctrl-C; returns its exit code."""
    proc = subprocess.Popen(server_command(port, workers, env, access_log=True), env={**os.environ, **env},
                            cwd=PROJECT_ROOT)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=15)
        return 0
