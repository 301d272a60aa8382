"""The shell commands of README.md and docs/ run on a fresh clone.

Every shell block is marked `<!-- runnable -->` or `<!-- not-run: REASON -->`
(docs/contributing.md). The runnable ones are run page by page, in the order of mkdocs.yml's
nav, in one clone of the repository's HEAD, with the project's virtual environment linked in as
`.venv` (nothing is installed). A page's blocks run in one bash shell that has sourced
`.venv/bin/activate`, as the docs ask; whatever it leaves running is stopped afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from doc_blocks import SHELL_LANGUAGES, blocks, doc_files, markers_without_block, shell_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGE_TIMEOUT_S = 420
# the clone gets its own database, stimuli and secrets: nothing of this machine's setup leaks in
CLEARED = ("DATABASE_URL", "STIMULI_ROOT", "SECRET_KEY", "FEEDBACK_CLASSIFIER", "DP_OMNIGLOT_DIR",
           "WEB_CONCURRENCY", "GUNICORN_THREADS", "OMP_NUM_THREADS", "VIRTUAL_ENV")


def test_every_shell_block_is_marked():
    unmarked = [b.where(ROOT) for b in shell_blocks(ROOT) if b.marker is None]
    assert not unmarked, "shell blocks without <!-- runnable --> or <!-- not-run: REASON -->: " + ", ".join(unmarked)
    no_reason = [b.where(ROOT) for b in shell_blocks(ROOT) if b.marker == "not-run" and not b.reason]
    assert not no_reason, "not-run blocks must say why: " + ", ".join(no_reason)
    stray = [f"{p.relative_to(ROOT)}:{n}" for p in doc_files(ROOT) for n in markers_without_block(p)]
    assert not stray, "markers not followed by a shell block: " + ", ".join(stray)


def test_the_parser_sees_markers_and_indented_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- runnable -->\n```bash\necho a\n```\n\n1. step\n\n"
                    "    <!-- not-run: needs a GPU -->\n    ```bash\n    nvidia-smi\n    ```\n\n"
                    "```bash\nls\n```\n\n```toml\nx = 1\n```\n")
    found = [(b.lang, b.marker, b.reason, b.code) for b in blocks(page)]
    assert found == [("bash", "runnable", "", "echo a\n"), ("bash", "not-run", "needs a GPU", "nvidia-smi\n"),
                     ("bash", None, "", "ls\n"), ("toml", None, "", "x = 1\n")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pages_with_runnable_blocks(root: Path) -> list[tuple[Path, str]]:
    pages = []
    for path in doc_files(root):
        code = [b.code for b in blocks(path) if b.lang in SHELL_LANGUAGES and b.marker == "runnable"]
        if code:
            pages.append((path.relative_to(root), "\n".join(code)))
    return pages


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about 2 minutes on 2 busy cores; pages time out one by one first
def test_runnable_blocks_on_a_fresh_clone(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").exists():
        pytest.skip("the tests do not run in a virtual environment to link in as .venv")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(venv)
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(PORT=str(_free_port()), MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    pages = _pages_with_runnable_blocks(clone)
    assert pages, "no runnable blocks found"
    for page, code in pages:
        script = f"set -euo pipefail\nsource .venv/bin/activate\n{code}"
        started = time.monotonic()
        proc = subprocess.Popen(["bash", "-c", script], cwd=clone, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=PAGE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            pytest.fail(f"{page}: the runnable blocks ran over {PAGE_TIMEOUT_S} s\n{output[-4000:]}")
        finally:
            try:  # stop what the page left running (a server started with &)
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        assert proc.returncode == 0, f"{page}: a runnable block failed (exit {proc.returncode})\n{output[-4000:]}"
        print(f"{page}: {time.monotonic() - started:.0f} s")
