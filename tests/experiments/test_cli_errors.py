"""Bad folders and files found late end the CLI with one line naming the option and exit code 2,
never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

import experiments.artist
from experiments.cli import main


def _err_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _run(*args: str) -> int:
    return main(["run", "artist", "--profile", "tiny", "--device", "cpu", "--no-progress", *args])


def test_out_that_cannot_be_created(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run("--out", "/proc/x", "--cache", str(tmp_path / "cache")) == 2
    assert "--out" in _err_line(capsys)


def test_cache_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    somefile = tmp_path / "somefile"
    somefile.write_text("not a folder")
    assert _run("--out", str(tmp_path / "run"), "--cache", str(somefile)) == 2
    assert "--cache" in _err_line(capsys)


def test_cache_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    somefile = tmp_path / "somefile"
    somefile.write_text("not a folder")
    assert _run("--out", str(tmp_path / "run"), "--cache", str(somefile / "cache")) == 2
    assert "--cache" in _err_line(capsys)


def test_demo_root_that_cannot_be_created(capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--no-serve", "--root", "/proc/x", "--device", "cpu", "--no-progress"]) == 2
    assert "--root" in _err_line(capsys)


@pytest.mark.parametrize(("exc", "expected"), [
    (KeyError("guidance"), "'guidance'"),
    (NotADirectoryError(20, "Not a directory", "/some/cache/diffusion"), "--cache"),
])
def test_late_errors_in_a_pipeline(exc: Exception, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_a: object, **_k: object) -> Path:
        raise exc

    monkeypatch.setattr(experiments.artist, "run_artist", fail)
    assert _run("--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache")) == 2
    assert expected in _err_line(capsys)
