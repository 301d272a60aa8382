"""The demo's choice of data: Omniglot when named or in the data cache, else the digits; a demo
folder built on one data set is not reused for another. Nothing here trains a model."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from experiments.demo_data import (
    OMNIGLOT_ENV,
    DemoData,
    DemoDataError,
    check_root,
    choose_data,
    mark_root,
)
from experiments.profiles import load_profile
from models.diffusion.training import load_training_data
from tests.experiments.conftest import run_cli


def _zip(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images_background_small1/Alpha/character01/a.png", b"")
    return path


def test_digits_when_no_omniglot_is_at_hand(tmp_path: Path) -> None:
    data = choose_data("auto", {"DP_DATA_CACHE": str(tmp_path)})
    assert (data.dataset, data.root, data.overrides()) == ("digits", None, [])
    assert str(tmp_path / "omniglot") in data.describe() and "data fetch omniglot" in data.describe()


def test_the_digits_profile_is_the_one_the_demo_always_used() -> None:
    data = choose_data("digits", {})
    assert data.describe() == "embedded digits (--dataset digits)"
    assert load_profile("tiny", None, data.overrides(), seed=0).digest() == load_profile("tiny", seed=0).digest()


def test_omniglot_in_the_data_cache(tmp_path: Path) -> None:
    folder = _zip(tmp_path / "omniglot" / "images_background_small1.zip").parent
    for requested in ("auto", "omniglot"):
        data = choose_data(requested, {"DP_DATA_CACHE": str(tmp_path)})
        assert (data.dataset, data.root) == ("omniglot", folder.resolve())
        assert data.describe() == f"Omniglot from {folder.resolve()} (found in the data cache)"
    assert choose_data("digits", {"DP_DATA_CACHE": str(tmp_path)}).dataset == "digits"


def test_the_xdg_cache_is_the_default(tmp_path: Path) -> None:
    _zip(tmp_path / "diffusion-psychophysics" / "omniglot" / "images_evaluation.zip")
    assert choose_data("auto", {"XDG_CACHE_HOME": str(tmp_path)}).dataset == "omniglot"


def test_the_environment_variable_wins_over_the_cache(tmp_path: Path) -> None:
    _zip(tmp_path / "cache" / "omniglot" / "images_background.zip")
    tree = tmp_path / "pngs" / "Alpha" / "character01"
    tree.mkdir(parents=True)
    (tree / "0001_01.png").write_bytes(b"")
    env = {"DP_DATA_CACHE": str(tmp_path / "cache"), OMNIGLOT_ENV: str(tmp_path / "pngs")}
    data = choose_data("auto", env)
    assert data.root == (tmp_path / "pngs").resolve() and data.reason == f"named by {OMNIGLOT_ENV}"
    one_zip = _zip(tmp_path / "one.zip")
    assert choose_data("auto", {OMNIGLOT_ENV: str(one_zip)}).root == one_zip.resolve()


@pytest.mark.parametrize("requested", ["auto", "omniglot"])
def test_a_variable_naming_no_omniglot_is_an_error(requested: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DemoDataError, match=f"^{OMNIGLOT_ENV}: .*empty holds no Omniglot"):
        choose_data(requested, {OMNIGLOT_ENV: str(tmp_path / "empty")})


def test_omniglot_requested_but_absent_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DemoDataError, match="^--dataset omniglot: no Omniglot in .*python -m models data fetch omniglot"):
        choose_data("omniglot", {"DP_DATA_CACHE": str(tmp_path)})
    with pytest.raises(DemoDataError, match="^--dataset: 'mnist'"):
        choose_data("mnist", {})


def test_the_tiny_profile_trains_on_real_omniglot(omniglot_dir: Path) -> None:
    data = choose_data("auto", {OMNIGLOT_ENV: str(omniglot_dir)})
    profile = load_profile("tiny", str(data.root), data.overrides(), seed=0)
    assert {(m.data.dataset, m.data.root, m.data.size) for m in profile.models} == {
        ("omniglot", str(omniglot_dir.resolve()), 16)}
    train, heldout, _ = load_training_data(profile.models[0])
    assert len(heldout.class_names) == 10 and len(train.class_names) > 100
    assert len(heldout) >= 10 * profile.section("sampling")["real_per_class"]


def test_a_demo_folder_is_not_reused_for_other_data(tmp_path: Path) -> None:
    digits = DemoData("digits", None, "test")
    omni = DemoData("omniglot", tmp_path / "omni", "test")
    check_root(tmp_path / "new", omni)  # nothing built yet
    built = tmp_path / "digits-demo"
    built.mkdir()
    (built / "study.db").write_bytes(b"")
    check_root(built, digits)
    with pytest.raises(DemoDataError, match="holds a demo built on the embedded digits"):
        check_root(built, omni)
    mark_root(built, digits)
    assert sorted(p.name for p in built.iterdir()) == ["study.db"]

    root = tmp_path / "omni-demo"
    mark_root(root, omni)
    check_root(root, omni)
    with pytest.raises(DemoDataError, match=f"built on Omniglot from {tmp_path / 'omni'}"):
        check_root(root, DemoData("omniglot", tmp_path / "other", "test"))
    with pytest.raises(DemoDataError, match="built on Omniglot"):
        check_root(root, digits)


def test_demo_cli_without_omniglot_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv(OMNIGLOT_ENV, raising=False)
    monkeypatch.setenv("DP_DATA_CACHE", str(tmp_path / "cache"))
    assert run_cli("demo", "--no-serve", "--dataset", "omniglot", "--root", str(tmp_path / "demo")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --dataset omniglot: no Omniglot in ") and "\n" not in err
