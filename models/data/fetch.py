"""Download files into a local cache folder: resumable, size- and checksum-checked, atomic.

Each file is written to `NAME.part` first. A `.part` left by an interrupted run is resumed with an
HTTP Range request; a server that ignores the Range (answers 200 with the whole file) restarts it
from the first byte. The finished file is checked against its size (the manifest's, else the
server's Content-Length) and sha256 (the manifest's, else the one recorded in the folder's lock
file by an earlier download), and only then renamed to NAME. A file whose checksum is not known
in advance has the sha256 of its first download recorded in the lock file (`fetch-lock.json`)
and checked on every later run.

Every failure is a `FetchError` whose message is one line naming the URL or file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

CACHE_ENV = "DP_DATA_CACHE"
CACHE_DIR_NAME = "diffusion-psychophysics"
LOCK_NAME = "fetch-lock.json"
CHUNK = 1 << 20
TIMEOUT_S = 60.0
USER_AGENT = "diffusion-psychophysics-fetch"


class FetchError(Exception):
    """A download failed; the message is one line naming the URL or file. `status` is the HTTP
    status when the server answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: saved as `name` in the target folder. `size` (bytes) and `sha256` are
    checked when given; None means not known in advance."""

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Fetched:
    """The outcome for one file. `checksum`: "known" (matched the manifest), "lock" (matched the
    sha256 recorded by an earlier download) or "recorded" (first download, now in the lock file).
    `downloaded`: False when the file was already in place and verified."""

    path: Path
    size: int
    sha256: str
    checksum: str
    downloaded: bool


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """The data cache: $DP_DATA_CACHE, else $XDG_CACHE_HOME/diffusion-psychophysics, else
    ~/.cache/diffusion-psychophysics."""
    env = os.environ if env is None else env
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / CACHE_DIR_NAME


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def read_lock(folder: Path) -> dict[str, dict]:
    """{file name: {"url", "size", "sha256"}} from the folder's lock file ({} when absent)."""
    path = folder / LOCK_NAME
    if not path.exists():
        return {}
    try:
        files = json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"{path}: not a fetch lock file ({exc}); delete it to record the checksums afresh") from exc
    if not isinstance(files, dict):
        raise FetchError(f"{path}: 'files' is not a table; delete it to record the checksums afresh")
    return files


def _write_lock(folder: Path, files: dict[str, dict]) -> None:
    path = folder / LOCK_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return " ".join(str(reason).split()) or type(exc).__name__


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}", status=exc.code) from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        raise FetchError(f"cannot reach {url}: {_reason(exc)}") from None


def _download_part(item: RemoteFile, part: Path, timeout: float, progress: Callable[[int, int | None], None],
                   expected_from: str) -> int:
    """Bring `part` to the whole file (resuming it when it holds a prefix); returns its size.
    `expected_from` says where `item.size` comes from, for the error message."""
    offset = part.stat().st_size if part.exists() else 0
    if item.size is not None and offset >= item.size:
        part.unlink()  # a whole (or overlong) part that failed its check earlier: start again
        offset = 0
    try:
        resp = _open(item.url, offset, timeout)
    except FetchError as exc:
        if exc.status != 416 or not offset:
            raise
        part.unlink()  # the server says the part is already past the end: start again
        offset = 0
        resp = _open(item.url, 0, timeout)
    with resp:
        total: int | None
        if resp.status == 206:
            match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
            if not match or int(match.group(1)) != offset:
                raise FetchError(f"{item.url}: the server answered the range request with "
                                 f"Content-Range {resp.headers.get('Content-Range')!r}")
            total = None if match.group(3) == "*" else int(match.group(3))
            mode = "ab"
        elif resp.status == 200:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            offset, mode = 0, "wb"  # no range support: the body is the whole file
        else:
            raise FetchError(f"{item.url}: unexpected HTTP {resp.status}", status=resp.status)
        if item.size is not None and total is not None and total != item.size:
            raise FetchError(f"{item.url}: the server has {total} bytes, expected {item.size} ({expected_from})")
        total = item.size if item.size is not None else total
        done = offset
        with part.open(mode) as fh:  # errors writing it are the cache's OSErrors, left to the caller
            progress(done, total)
            while True:
                try:
                    block = resp.read(CHUNK)
                except (OSError, HTTPException) as exc:
                    raise FetchError(f"{item.url}: download interrupted after {done} bytes ({_reason(exc)}); "
                                     "run the command again to resume it") from None
                if not block:
                    break
                fh.write(block)
                done += len(block)
                progress(done, total)
            fh.flush()
            os.fsync(fh.fileno())
    if total is not None and done != total:
        raise FetchError(f"{item.url}: download stopped after {done} of {total} bytes; "
                         "run the command again to resume it")
    return done


def fetch_file(
    item: RemoteFile,
    folder: Path,
    timeout: float = TIMEOUT_S,
    progress: Callable[[int, int | None], None] | None = None,
) -> Fetched:
    """Put `item` into `folder` (verified) unless it is there already; record its checksum in
    the lock file. Raises FetchError; a downloaded file that fails its checksum is deleted."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = read_lock(folder)
    entry = lock.get(item.name) or {}
    if item.sha256 and entry.get("sha256") not in (None, item.sha256):
        raise FetchError(f"{folder / LOCK_NAME}: {item.name} is recorded with sha256 {entry['sha256']}, "
                         f"but its known sha256 is {item.sha256}; delete the lock file's entry")
    want_sha = item.sha256 or entry.get("sha256")
    want_size = item.size if item.size is not None else entry.get("size")
    checksum = "known" if item.sha256 else "lock" if want_sha else "recorded"
    expected_from = "known in advance" if checksum == "known" else f"recorded in {folder / LOCK_NAME}"
    final = folder / item.name
    downloaded = False
    if final.exists():
        size, sha = final.stat().st_size, sha256_of(final)
        if (want_size is not None and size != want_size) or (want_sha and sha != want_sha):
            raise FetchError(f"{final}: {size} bytes, sha256 {sha} does not match the expected "
                             f"{want_size} bytes, sha256 {want_sha} ({expected_from}); "
                             "delete the file to fetch it again")
    else:
        part = final.with_name(final.name + ".part")
        size = _download_part(RemoteFile(item.name, item.url, want_size, want_sha), part, timeout,
                              progress or (lambda done, total: None), expected_from)
        sha = sha256_of(part)
        if want_sha and sha != want_sha:
            part.unlink()
            raise FetchError(f"{item.url}: sha256 {sha} does not match the expected {want_sha} "
                             f"({expected_from}); the download was deleted")
        os.replace(part, final)
        downloaded = True
    if entry.get("sha256") != sha or entry.get("size") != size or entry.get("url") != item.url:
        lock = read_lock(folder)
        lock[item.name] = {"url": item.url, "size": size, "sha256": sha}
        _write_lock(folder, lock)
    return Fetched(final, size, sha, checksum, downloaded)


def fetch_all(
    items: Iterable[RemoteFile],
    folder: Path,
    timeout: float = TIMEOUT_S,
    quiet: bool = False,
) -> list[Fetched]:
    """`fetch_file` for each item in turn, with one progress line per file on stderr."""
    out = []
    for item in items:
        if not quiet:
            print(f"{item.name}: {item.url}", file=sys.stderr)
        result = fetch_file(item, folder, timeout, None if quiet else _progress_line(item.name))
        if not quiet:
            if sys.stderr.isatty():
                print(file=sys.stderr)
            how = {"known": "matches the known sha256", "lock": "matches the sha256 in " + LOCK_NAME,
                   "recorded": "sha256 recorded in " + LOCK_NAME}[result.checksum]
            state = "downloaded" if result.downloaded else "already present"
            print(f"{item.name}: {state}, {result.size:,} bytes, {how}", file=sys.stderr)
        out.append(result)
    return out


def _progress_line(name: str) -> Callable[[int, int | None], None]:
    """A progress callback that rewrites one line on a terminal and stays silent elsewhere."""
    if not sys.stderr.isatty():
        return lambda done, total: None

    def show(done: int, total: int | None) -> None:
        share = f" ({100 * done / total:.0f}%)" if total else ""
        print(f"\r  {name}: {done / 1e6:.1f} MB{share}", end="", file=sys.stderr, flush=True)

    return show
