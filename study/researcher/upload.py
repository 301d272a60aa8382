"""Uploaded manifests: a bare .csv/.json (images in a folder under STIMULI_ROOT) or a .zip
bundle holding the manifest and its images, unpacked safely into a temporary folder."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from study.manifest import ManifestError, Problem

MAX_BUNDLE_FILES = 50_000
MAX_BUNDLE_BYTES = 500 * 1024 * 1024
MANIFEST_NAMES = ("manifest.json", "manifest.csv")


def _fail(column: str, message: str) -> ManifestError:
    return ManifestError([Problem(None, column, message)])


def unpack_bundle(archive: Path, into: Path) -> Path:
    """Extract `archive` into `into` (no absolute paths, no '..', bounded size); returns the
    manifest inside it (manifest.json preferred, at the top or in one folder)."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise _fail("manifest", "the .zip file is not a valid zip archive") from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_BUNDLE_FILES:
            raise _fail("manifest", f"the bundle has more than {MAX_BUNDLE_FILES} files")
        if sum(m.file_size for m in members) > MAX_BUNDLE_BYTES:
            raise _fail("manifest", "the bundle unpacks to more than 500 MiB")
        for m in members:
            name = PurePosixPath(m.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in m.filename:
                raise _fail("manifest", f"the bundle holds an unsafe path: {m.filename}")
        zf.extractall(into)
    for name in MANIFEST_NAMES:
        found = sorted(p for p in into.rglob(name) if len(p.relative_to(into).parts) <= 2)
        if found:
            return found[0]
    raise _fail("manifest", "the bundle has no manifest.json or manifest.csv")


def resolve_image_dir(stimuli_root: str | Path, folder: str) -> Path:
    """`folder` (relative to STIMULI_ROOT) as an existing directory inside it."""
    root = Path(stimuli_root).resolve()
    target = (root / (folder or "")).resolve()
    if not target.is_relative_to(root):
        raise _fail("image_folder", "must be a folder inside the server's stimulus folder")
    if not target.is_dir():
        raise _fail("image_folder", f"folder not found on the server: {folder or '.'}")
    return target
