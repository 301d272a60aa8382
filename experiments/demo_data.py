"""Which data the demo trains on: Omniglot when it is at hand, else the embedded digits.

Omniglot is at hand when $DP_OMNIGLOT_DIR names it, or when `python -m models data fetch
omniglot` has put it in the data cache. The demo then runs the tiny profile on it (16 px, the
tiny models and sizes, 10 held-out characters) and builds in its own folder, so that the
digits demo's studies are never served with other stimuli.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from models.data.fetch import cache_root
from models.data.omniglot import omniglot_zips
from models.data.sources import omniglot_folder

OMNIGLOT_ENV = "DP_OMNIGLOT_DIR"
CHOICES = ("auto", "digits", "omniglot")
MARKER = "demo_data.json"


class DemoDataError(ValueError):
    """The requested data cannot be used; the message names the option or variable."""


@dataclass(frozen=True)
class DemoData:
    """`dataset`: digits or omniglot; `root`: the Omniglot folder or zip (None for digits);
    `reason`: how it was chosen, for the log."""

    dataset: str
    root: Path | None
    reason: str

    def overrides(self) -> list[str]:
        """The tiny profile's --set overrides for this data (none for the digits)."""
        return [] if self.dataset == "digits" else [f'data.dataset="{self.dataset}"']

    def describe(self) -> str:
        if self.dataset == "digits":
            return f"embedded digits ({self.reason})"
        return f"Omniglot from {self.root} ({self.reason})"


def holds_omniglot(path: Path) -> bool:
    """A zip, a folder with images_*.zip, or a folder of ALPHABET/characterNN/*.png."""
    if path.is_file():
        return path.suffix == ".zip"
    return path.is_dir() and (bool(omniglot_zips(path)) or next(path.glob("*/*/*.png"), None) is not None)


def choose_data(requested: str = "auto", env: Mapping[str, str] | None = None) -> DemoData:
    """The demo's data for `requested` (auto, digits or omniglot) given the environment `env`
    (default os.environ): $DP_OMNIGLOT_DIR if set, else the data cache's omniglot folder."""
    if requested not in CHOICES:
        raise DemoDataError(f"--dataset: {requested!r} is not one of {', '.join(CHOICES)}")
    if requested == "digits":
        return DemoData("digits", None, "--dataset digits")
    env = os.environ if env is None else env
    named = env.get(OMNIGLOT_ENV)
    if named:
        path = Path(named).expanduser().resolve()
        if not holds_omniglot(path):
            raise DemoDataError(f"{OMNIGLOT_ENV}: {named} holds no Omniglot (images_*.zip or "
                                "ALPHABET/characterNN/*.png)")
        return DemoData("omniglot", path, f"named by {OMNIGLOT_ENV}")
    cached = omniglot_folder(cache_root(env)).resolve()
    if holds_omniglot(cached):
        return DemoData("omniglot", cached, "found in the data cache")
    if requested == "omniglot":
        raise DemoDataError(f"--dataset omniglot: no Omniglot in {cached} and {OMNIGLOT_ENV} is not set; "
                            "`python -m models data fetch omniglot` downloads it")
    return DemoData("digits", None, f"no Omniglot in {cached}; `python -m models data fetch omniglot` gets it")


def check_root(root: Path, data: DemoData) -> None:
    """Refuse a demo folder built on other data (its studies would be served as they are); a
    folder built on Omniglot records which in `demo_data.json`, one without that file holds the
    digits demo."""
    marker = root / MARKER
    if marker.exists():
        try:
            built = json.loads(marker.read_text())
            built = {"dataset": str(built["dataset"]), "root": built["root"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise DemoDataError(f"--root: {marker} is damaged ({exc}); delete it if the folder "
                                "holds an Omniglot demo") from exc
    elif (root / "study.db").exists():
        built = {"dataset": "digits", "root": None}
    else:
        return
    want = {"dataset": data.dataset, "root": None if data.root is None else str(data.root)}
    if built != want:
        what = "the embedded digits" if built["dataset"] == "digits" else f"Omniglot from {built['root']}"
        raise DemoDataError(f"--root: {root} holds a demo built on {what}; pass another --root "
                            "(or delete that folder) to build one on " + data.describe())


def mark_root(root: Path, data: DemoData) -> None:
    """Record the Omniglot a demo folder is built on (the digits demo's folder gets no file)."""
    if data.dataset != "digits":
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER).write_text(json.dumps({"dataset": data.dataset, "root": str(data.root)}) + "\n")
