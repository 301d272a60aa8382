"""The test processes' units of work (tests/conftest.py): a module, or the modules that share
session fixtures, so that what they share is made once."""

from __future__ import annotations

from tests.conftest import ROOT, SHARED_WORKER, worker_scope


def test_a_module_is_one_unit_of_work():
    assert worker_scope("tests/study/test_fuzz.py::test_no_server_errors[GET /openapi.json]") == "tests/study/test_fuzz.py"
    assert worker_scope("tests/a/test_b.py::Klass::test_c") == "tests/a/test_b.py"


def test_modules_sharing_the_tiny_models_share_a_worker():
    scopes = {worker_scope(f"{module}::test_x") for module in SHARED_WORKER}
    assert scopes == {"tiny trained models"}


def test_every_shared_module_exists():
    # A renamed module would silently leave its group and train the tiny models a second time.
    for module in SHARED_WORKER:
        assert (ROOT / module).is_file(), module
