"""`python -m models data fetch`: downloads from a local stand-in server on 127.0.0.1 (files the
tests make: a tiny Omniglot zip tree, tiny QuickDraw bitmaps), checked, resumed, recorded, and
read back by the loaders. No test leaves the machine."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.cli import main
from models.data import load_dataset, sources
from models.data.fetch import LOCK_NAME, FetchError, RemoteFile, cache_root, fetch_file
from models.data.quickdraw import load_quickdraw


@dataclass
class Stand:
    """What the stand-in server serves and how it misbehaves; `requests` logs (path, Range)."""

    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before hanging up (once)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


def _handler(stand: Stand) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            stand.requests.append((self.path, rng))
            body = stand.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if rng and not stand.ignore_range:
                start = int(rng.removeprefix("bytes=").rstrip("-"))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = stand.cut_after.pop(self.path, None)
            self.wfile.write(body[start:] if cut is None else body[start:start + cut])
            if cut is not None:
                self.wfile.flush()
                self.close_connection = True

    return Handler


@pytest.fixture
def stand() -> Iterator[Stand]:
    s = Stand()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    s.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield s
    server.shutdown()
    server.server_close()
    thread.join()


def _png(seed: int) -> bytes:
    """A 105x105 black-on-white stroke, as Omniglot's PNGs are."""
    img = np.full((105, 105), 255, np.uint8)
    row = 20 + 7 * (seed % 10)
    img[row:row + 6, 15:90] = 0
    img[15:90, 20 + 5 * (seed // 10):26 + 5 * (seed // 10)] = 0
    buf = io.BytesIO()
    Image.fromarray(img).convert("1").save(buf, format="PNG")
    return buf.getvalue()


def _omniglot_zip(top: str, alphabets: dict[str, int], drawings: int = 3) -> bytes:
    """A drawing has the same file name and bytes in every zip that holds it, as in Omniglot."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for alphabet, n_chars in alphabets.items():
            for c in range(1, n_chars + 1):
                for d in range(1, drawings + 1):
                    seed = (sum(map(ord, alphabet)) + 7 * c + d) % 100
                    zf.writestr(f"{top}/{alphabet}/character{c:02d}/{alphabet}{c:02d}_{d:02d}.png", _png(seed))
    return buf.getvalue()


def _npy(n: int, seed: int) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(seed).integers(0, 256, (n, 784), dtype=np.uint8))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(["data", "fetch", *argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def fake_omniglot(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The five Omniglot files as tiny fakes; the manifest's known checksums are pointed at the
    fakes of the three files that carry one."""
    files = {
        "images_background.zip": _omniglot_zip("images_background", {"Alpha": 2, "Beta": 1}),
        "images_evaluation.zip": _omniglot_zip("images_evaluation", {"Gamma": 2}),
        "images_background_small1.zip": _omniglot_zip("images_background_small1", {"Alpha": 2}),
        "images_background_small2.zip": _omniglot_zip("images_background_small2", {"Beta": 1}),
        "all_runs.zip": _omniglot_zip("all_runs", {"run01": 1}),
    }
    for name, body in files.items():
        stand.files[f"/omniglot/{name}"] = body
    known = {n: (len(files[n]), _sha(files[n])) if v else None for n, v in sources.OMNIGLOT_FILES.items()}
    monkeypatch.setattr(sources, "OMNIGLOT_FILES", known)
    return files


def test_fetch_omniglot_verifies_records_and_the_loader_reads_it(
    stand: Stand, fake_omniglot: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code, out, err = _cli(capsys, "omniglot", "--cache", str(tmp_path), "--base-url", f"{stand.url}/omniglot")
    assert code == 0, err
    folder = tmp_path / "omniglot"
    assert f"data: {folder.resolve()}" in out and f"--data {folder.resolve()}" in out
    assert sorted(p.name for p in folder.iterdir()) == sorted([*fake_omniglot, LOCK_NAME])
    lock = json.loads((folder / LOCK_NAME).read_text())["files"]
    assert {n: (e["size"], e["sha256"]) for n, e in lock.items()} == {
        n: (len(b), _sha(b)) for n, b in fake_omniglot.items()
    }
    assert lock["all_runs.zip"]["url"] == f"{stand.url}/omniglot/all_runs.zip"
    data = load_dataset("omniglot", folder, 16)
    assert sorted(data.class_names) == ["Alpha/character01", "Alpha/character02", "Beta/character01",
                                        "Gamma/character01", "Gamma/character02"]
    assert len(data) == 15  # the minimal splits repeat background drawings: read once

    # A second run checks what is there against the lock file and downloads nothing.
    n_requests = len(stand.requests)
    code, out, _ = _cli(capsys, "omniglot", "--cache", str(tmp_path), "--base-url", f"{stand.url}/omniglot")
    assert code == 0 and len(stand.requests) == n_requests


def test_fetch_omniglot_minimal_and_progress_lines(
    stand: Stand, fake_omniglot: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DP_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(sources.OMNIGLOT_URL_ENV, f"{stand.url}/omniglot")
    assert main(["data", "fetch", "omniglot", "--minimal"]) == 0
    _, err = capsys.readouterr()
    folder = tmp_path / "cache" / "omniglot"
    assert sorted(p.name for p in folder.glob("*.zip")) == sorted(sources.OMNIGLOT_MINIMAL)
    assert "all_runs.zip: downloaded, " in err and "matches the known sha256" in err
    assert main(["data", "fetch", "omniglot", "--minimal"]) == 0
    assert "all_runs.zip: already present" in capsys.readouterr().err


def test_known_checksums_match_the_shared_omniglot_copies(
    stand: Stand, omniglot_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for name in sources.OMNIGLOT_MINIMAL:
        stand.files[f"/python/{name}"] = (omniglot_dir / name).read_bytes()
    code, _, err = _cli(capsys, "omniglot", "--minimal", "--cache", str(tmp_path), "--base-url", f"{stand.url}/python")
    assert code == 0, err
    results = [fetch_file(f, tmp_path / "omniglot") for f in sources.omniglot_files(f"{stand.url}/python", True)]
    assert [r.checksum for r in results] == ["known"] * 3 and not any(r.downloaded for r in results)


def test_fetch_quickdraw_url_encodes_and_the_loader_reads_it(
    stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bodies = {"cat": _npy(5, 0), "The Eiffel Tower": _npy(4, 1)}
    stand.files["/qd/numpy_bitmap/cat.npy"] = bodies["cat"]
    stand.files["/qd/numpy_bitmap/The%20Eiffel%20Tower.npy"] = bodies["The Eiffel Tower"]
    code, out, err = _cli(capsys, "quickdraw", "cat", "The Eiffel Tower", "--cache", str(tmp_path),
                          "--base-url", f"{stand.url}/qd/")
    assert code == 0, err
    folder = tmp_path / "quickdraw" / "numpy_bitmap"
    assert f"data: {folder.resolve()}" in out
    assert f"--data {folder.resolve()} --set data.dataset=quickdraw" in out
    lock = json.loads((folder / LOCK_NAME).read_text())["files"]
    assert lock["The Eiffel Tower.npy"]["sha256"] == _sha(bodies["The Eiffel Tower"])
    assert lock["The Eiffel Tower.npy"]["url"].endswith("/numpy_bitmap/The%20Eiffel%20Tower.npy")
    data = load_quickdraw(folder, 28, threshold=None)
    assert sorted(data.class_names) == ["The Eiffel Tower", "cat"] and len(data) == 9


def test_fetch_quickdraw_simplified_goes_to_its_own_folder(
    stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = {"word": "cat", "key_id": "1", "drawing": [[[10, 200, 100], [10, 10, 200]]]}
    stand.files["/qd/simplified/cat.ndjson"] = (json.dumps(record) + "\n").encode()
    monkeypatch.setenv(sources.QUICKDRAW_URL_ENV, f"{stand.url}/qd")
    code, _, err = _cli(capsys, "quickdraw", "cat", "--format", "simplified", "--cache", str(tmp_path))
    assert code == 0, err
    data = load_quickdraw(tmp_path / "quickdraw" / "simplified", 28)
    assert data.class_names == ["cat"] and len(data) == 1


def test_resume_a_truncated_part_with_a_range_request(stand: Stand, tmp_path: Path) -> None:
    body = _npy(50, 2)
    stand.files["/f.npy"] = body
    (tmp_path / "f.npy.part").write_bytes(body[:1000])
    r = fetch_file(RemoteFile("f.npy", f"{stand.url}/f.npy", len(body), _sha(body)), tmp_path)
    assert stand.requests == [("/f.npy", "bytes=1000-")]
    assert r.downloaded and r.checksum == "known" and (tmp_path / "f.npy").read_bytes() == body
    assert not (tmp_path / "f.npy.part").exists()


def test_an_interrupted_download_keeps_its_part_and_the_next_run_resumes(
    stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    body = _npy(50, 3)
    stand.files["/qd/numpy_bitmap/cat.npy"] = body
    stand.cut_after["/qd/numpy_bitmap/cat.npy"] = 700
    args = ("quickdraw", "cat", "--cache", str(tmp_path), "--base-url", f"{stand.url}/qd")
    code, _, err = _cli(capsys, *args)
    line = _one_line_error(err)
    assert code == 1 and f"{stand.url}/qd/numpy_bitmap/cat.npy" in line and "resume" in line
    folder = tmp_path / "quickdraw" / "numpy_bitmap"
    assert (folder / "cat.npy.part").stat().st_size == 700 and not (folder / "cat.npy").exists()
    code, _, err = _cli(capsys, *args)
    assert code == 0, err
    assert stand.requests[-1] == ("/qd/numpy_bitmap/cat.npy", "bytes=700-")
    assert (folder / "cat.npy").read_bytes() == body and not (folder / "cat.npy.part").exists()


def test_a_server_that_ignores_range_restarts_the_file(stand: Stand, tmp_path: Path) -> None:
    body = _npy(50, 4)
    stand.files["/f.npy"] = body
    stand.ignore_range = True
    (tmp_path / "f.npy.part").write_bytes(b"x" * 1000)  # appended to, this would fail the check
    r = fetch_file(RemoteFile("f.npy", f"{stand.url}/f.npy"), tmp_path)
    assert stand.requests == [("/f.npy", "bytes=1000-")]
    assert (tmp_path / "f.npy").read_bytes() == body and r.sha256 == _sha(body) and r.checksum == "recorded"


def test_a_part_past_the_end_restarts_after_416(stand: Stand, tmp_path: Path) -> None:
    body = b"0123456789"
    stand.files["/f.bin"] = body
    (tmp_path / "f.bin.part").write_bytes(b"y" * 20)
    fetch_file(RemoteFile("f.bin", f"{stand.url}/f.bin"), tmp_path)
    assert stand.requests == [("/f.bin", "bytes=20-"), ("/f.bin", None)]
    assert (tmp_path / "f.bin").read_bytes() == body


def test_checksum_mismatch_is_an_error_and_the_download_is_deleted(
    stand: Stand, fake_omniglot: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = fake_omniglot["all_runs.zip"]
    bad = bytes([good[0] ^ 1]) + good[1:]  # same size, other content
    stand.files["/omniglot/all_runs.zip"] = bad
    code, _, err = _cli(capsys, "omniglot", "--minimal", "--cache", str(tmp_path), "--base-url", f"{stand.url}/omniglot")
    line = _one_line_error(err)
    assert code == 1 and "all_runs.zip" in line and "sha256" in line and "deleted" in line
    folder = tmp_path / "omniglot"
    assert not (folder / "all_runs.zip").exists() and not (folder / "all_runs.zip.part").exists()


def test_a_size_other_than_the_known_one_is_refused_before_downloading(stand: Stand, tmp_path: Path) -> None:
    stand.files["/f.bin"] = b"abc"
    with pytest.raises(FetchError, match="has 3 bytes, expected 4"):
        fetch_file(RemoteFile("f.bin", f"{stand.url}/f.bin", size=4), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_lock_file_checks_a_later_download_of_the_same_file(stand: Stand, tmp_path: Path) -> None:
    stand.files["/f.npy"] = _npy(3, 5)
    first = fetch_file(RemoteFile("f.npy", f"{stand.url}/f.npy"), tmp_path)
    assert first.checksum == "recorded"
    (tmp_path / "f.npy").unlink()
    stand.files["/f.npy"] = _npy(3, 6)  # same size, other bytes: the source changed
    with pytest.raises(FetchError, match=f"sha256 .* does not match the expected {first.sha256}"):
        fetch_file(RemoteFile("f.npy", f"{stand.url}/f.npy"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]


def test_a_damaged_file_in_the_cache_is_reported_not_replaced(stand: Stand, tmp_path: Path) -> None:
    stand.files["/f.npy"] = _npy(3, 7)
    fetch_file(RemoteFile("f.npy", f"{stand.url}/f.npy"), tmp_path)
    (tmp_path / "f.npy").write_bytes(b"damaged")
    with pytest.raises(FetchError, match="delete the file to fetch it again"):
        fetch_file(RemoteFile("f.npy", f"{stand.url}/f.npy"), tmp_path)
    assert (tmp_path / "f.npy").read_bytes() == b"damaged"


def test_offline_is_one_line_naming_the_url(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mirror"
    code, out, err = _cli(capsys, "omniglot", "--cache", str(tmp_path), "--base-url", url)
    line = _one_line_error(err)
    assert code == 1 and out == ""
    assert line.startswith(f"error: cannot reach {url}/images_background.zip: ")
    assert not list((tmp_path / "omniglot").glob("*.zip"))


def test_an_unknown_category_is_a_clear_error(stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stand.files["/qd/numpy_bitmap/cat.npy"] = _npy(2, 8)
    code, _, err = _cli(capsys, "quickdraw", "cat", "Cat Dog", "--cache", str(tmp_path), "--base-url", f"{stand.url}/qd")
    line = _one_line_error(err)
    assert code == 1
    assert line.startswith("error: no QuickDraw category 'Cat Dog' at ") and "Cat%20Dog.npy" in line and "404" in line
    folder = tmp_path / "quickdraw" / "numpy_bitmap"
    assert sorted(p.name for p in folder.iterdir()) == ["cat.npy", LOCK_NAME]


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "", " cat"])
def test_a_category_that_is_a_path_is_refused(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _cli(capsys, "quickdraw", name, "--cache", str(tmp_path), "--base-url", "http://127.0.0.1:9")
    assert code == 2 and _one_line_error(err).startswith("error: CATEGORY: ")
    assert not (tmp_path / "quickdraw").exists()


def test_a_cache_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("")
    code, _, err = _cli(capsys, "omniglot", "--cache", str(tmp_path / "file"), "--base-url", "http://127.0.0.1:9")
    assert code == 2 and _one_line_error(err) == f"error: --cache: {tmp_path / 'file'} is a file, not a folder"


def test_cache_root_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_root({"DP_DATA_CACHE": str(tmp_path), "XDG_CACHE_HOME": "/x"}) == tmp_path
    assert cache_root({"XDG_CACHE_HOME": "/x"}) == Path("/x/diffusion-psychophysics")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root({}) == tmp_path / ".cache" / "diffusion-psychophysics"
    assert cache_root({"XDG_CACHE_HOME": "relative"}) == tmp_path / ".cache" / "diffusion-psychophysics"
