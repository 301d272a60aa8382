"""Where the public sketch data sets live and which files `python -m models data fetch` gets.

- Omniglot (Lake et al. 2015, MIT licence): the zips of github.com/brendenlake/omniglot's
  `python/` folder, the files `models.data.omniglot` and `models.classifiers.omniglot_runs` read.
  The sizes and sha256 given below are those of copies of the minimal splits and the one-shot
  runs kept beside this project; the large background and evaluation zips carry none, so their
  first download records its own in the lock file.
- QuickDraw (Google, CC BY 4.0): one file per category in the public bucket
  `quickdraw_dataset`: `full/numpy_bitmap/CATEGORY.npy` (N x 784 uint8 bitmaps) or
  `full/simplified/CATEGORY.ndjson` (strokes). No checksums are published: the size is checked
  against the server's Content-Length and the sha256 recorded in the lock file.

Each base URL can be replaced (a mirror, or a local server in tests): the files are then
fetched from the same relative paths under it.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from models.data.fetch import RemoteFile

OMNIGLOT_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
OMNIGLOT_URL_ENV = "DP_OMNIGLOT_URL"
QUICKDRAW_URL = "https://storage.googleapis.com/quickdraw_dataset/full"
QUICKDRAW_URL_ENV = "DP_QUICKDRAW_URL"

# name -> (size in bytes, sha256); None where not known in advance.
OMNIGLOT_FILES: dict[str, tuple[int, str] | None] = {
    "images_background.zip": None,
    "images_evaluation.zip": None,
    "images_background_small1.zip": (1319022, "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
    "images_background_small2.zip": (1580917, "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
    "all_runs.zip": (352787, "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325"),
}
# The minimal splits (5,840 drawings, loaded in seconds) and the 20 one-shot runs.
OMNIGLOT_MINIMAL = ("images_background_small1.zip", "images_background_small2.zip", "all_runs.zip")
# QuickDraw formats: sub-folder of the bucket's `full/` (and of the cache) -> file suffix.
QUICKDRAW_FORMATS = {"numpy_bitmap": ".npy", "simplified": ".ndjson"}


def omniglot_folder(cache: Path) -> Path:
    """Where fetched Omniglot lives in the cache (the `--data` folder for the pipelines)."""
    return cache / "omniglot"


def quickdraw_folder(cache: Path, fmt: str = "numpy_bitmap") -> Path:
    """Where fetched QuickDraw files of one format live (one loader folder per format, so that a
    category fetched as both is not loaded twice)."""
    return cache / "quickdraw" / fmt


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def omniglot_files(base_url: str = OMNIGLOT_URL, minimal: bool = False) -> list[RemoteFile]:
    """The Omniglot zips to fetch (all five, or the minimal splits and the runs)."""
    names = OMNIGLOT_MINIMAL if minimal else tuple(OMNIGLOT_FILES)
    out = []
    for name in names:
        known = OMNIGLOT_FILES[name]
        size, sha = known if known else (None, None)
        out.append(RemoteFile(name, f"{_base(base_url)}/{name}", size, sha))
    return out


def check_category(name: str) -> str:
    """A QuickDraw category as given (`cat`, `The Eiffel Tower`); refuses names that cannot be a
    category file: empty, a path, or starting with a dot."""
    if not name.strip() or name != name.strip() or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"CATEGORY: {name!r} is not a QuickDraw category name (e.g. cat, 'The Eiffel Tower')")
    return name


def quickdraw_files(categories: list[str], fmt: str = "numpy_bitmap", base_url: str = QUICKDRAW_URL) -> list[RemoteFile]:
    """One file per category; names with spaces are URL-encoded (`The%20Eiffel%20Tower.npy`)
    and saved under their plain name (`The Eiffel Tower.npy`, category from the file name)."""
    if fmt not in QUICKDRAW_FORMATS:
        raise ValueError(f"--format: {fmt!r} is not one of {', '.join(QUICKDRAW_FORMATS)}")
    suffix = QUICKDRAW_FORMATS[fmt]
    out = []
    for cat in dict.fromkeys(check_category(c) for c in categories):
        url = f"{_base(base_url)}/{fmt}/{urllib.parse.quote(cat + suffix)}"
        out.append(RemoteFile(cat + suffix, url))
    return out
