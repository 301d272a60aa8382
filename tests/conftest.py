"""Shared test fixtures: paths to real data and external services; one torch thread for model tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Torch's OpenMP threads spin while they wait; on a shared 2-core machine that made training
# 3-8x slower (BENCHMARKS.md, experiments). Set before any test imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Under pytest-xdist the test processes already share the cores, so a second torch thread in a
# process (or in the subprocesses it starts) only waits for a core: one thread each.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
# Test folders whose modules run torch on one thread (see `_one_torch_thread`).
ONE_TORCH_THREAD_DIRS = frozenset({"attribution", "classifiers", "models"})
# The project's shared data folder sits beside the checkout (../shared); a clone made elsewhere
# (CI) finds it at the workplace's fixed path.
OMNIGLOT_CANDIDATES = (
    ROOT.parent / "shared" / "data" / "omniglot",
    Path("/work/shared/data/omniglot"),
)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEVICE_MARKER = (
    "device: takes the torch_device fixture, so it runs on the device --device names (cpu unless "
    "told); `make gpu-check` runs these with --device cuda"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device", default="cpu",
        help="torch device of the tests that take the torch_device fixture (cpu, cuda, cuda:N); "
             "`-m device` selects those tests",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", DEVICE_MARKER)
    name = config.getoption("--device")
    if name != "cpu":
        from models.device import pick_device

        try:
            pick_device(name)
        except ValueError as exc:
            raise pytest.UsageError(f"--{exc}") from exc


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that takes torch_device with `device`, so `-m device` is exactly the set
    of tests whose device the run chooses."""
    for item in items:
        if "torch_device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


# Test modules that share session fixtures, so pytest-xdist must run them in one process: the
# pipeline tests and the demo share one cache of tiny trained models (tests/experiments/conftest.py).
SHARED_WORKER = {
    "tests/experiments/test_demo.py": "tiny trained models",
    "tests/experiments/test_pipelines.py": "tiny trained models",
}


def worker_scope(nodeid: str) -> str:
    """The unit of work a pytest-xdist worker takes whole: the test's module (its module-scoped
    fixtures, a trained model or a browser, are then made once), or the group of modules that
    share session fixtures (SHARED_WORKER)."""
    module = nodeid.split("::", 1)[0]
    return SHARED_WORKER.get(module, module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`make test` runs two workers (pytest-xdist); they take work by `worker_scope`."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_scope(nodeid)

    return ModuleScheduling(config, log)


@pytest.fixture(scope="session")
def torch_device(request: pytest.FixtureRequest) -> Iterator[object]:
    """The torch.device that --device names. On CUDA, TF32 is off while these tests run, so the
    device's float32 results can be held to the CPU's at float32 tolerances (TF32 keeps only
    10 mantissa bits in convolutions and matrix products)."""
    import torch

    from models.device import pick_device

    device = pick_device(request.config.getoption("--device"))
    if device.type != "cuda":
        yield device
        return
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield device
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.fixture(scope="session")
def omniglot_dir() -> Path:
    """The real Omniglot zips from ../shared; tests that need them skip clearly without them."""
    env = os.environ.get("DP_OMNIGLOT_DIR")
    candidates = [Path(env)] if env else list(OMNIGLOT_CANDIDATES)
    path = next((c for c in candidates if (c / "images_background_small1.zip").exists()), candidates[0])
    if not (path / "images_background_small1.zip").exists():
        pytest.skip(f"Omniglot data not found at {path} (set DP_OMNIGLOT_DIR)")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL from DP_TEST_POSTGRES_URL; a set but unreachable server fails the test."""
    url = os.environ.get("DP_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("DP_TEST_POSTGRES_URL not set (bash .ci/run starts a server and sets it)")
    return url


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Torch on one thread in the modules under tests/{attribution,classifiers,models}: on the
    shared 2-core machine two OpenMP threads that spin while other processes hold the cores were
    measured 10-20x slower than one. Module scope (and autouse, so it runs first), so the
    module-scoped training fixtures run on one thread too. Other folders are left alone (and do
    not import torch for it)."""
    try:
        folder = Path(request.path).resolve().relative_to(TESTS).parts[0]
    except ValueError:
        folder = ""
    if folder not in ONE_TORCH_THREAD_DIRS:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


DOCS_FIGURES = ROOT / "docs" / "figures"
DOCS_FIGURES_ENV = "DP_DOCS_FIGURES"


@pytest.fixture
def docs_figure(tmp_path: Path):
    """`docs_figure("researcher/builder.png")` -> where a test writes a documentation screenshot:
    docs/figures/<name> when DP_DOCS_FIGURES=1 (how the docs' pictures are remade, see
    docs/contributing.md), else a file under the test's tmp_path, so that a plain test run takes
    the same screenshot but leaves the checkout unchanged (screenshots hold times and random
    stimuli, so they differ on every run)."""

    def path(name: str) -> Path:
        base = DOCS_FIGURES if os.environ.get(DOCS_FIGURES_ENV) == "1" else tmp_path / "figures"
        out = base / name
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless chromium through Playwright (never a downloaded browser), one per test
    module; the test skips clearly where it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
