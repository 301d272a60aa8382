"""ClickMe game feedback: a classifier sees only the revealed pixels of the image.

The revealed image is built from the participant's points and the study's bubble radius (pure
numpy); the classifier comes from `models.classifiers.feedback` (imported lazily, so the web app
starts without torch) with the contract `FeedbackClassifier.load(path, device=None)` and
`.predict(images: float32 (N, H, W) in [0, 1]) -> list[(label, probability)]`.
The checkpoint is the app's FEEDBACK_CLASSIFIER, else the study's `feedback_classifier` setting.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask
from PIL import Image

from study.config import PROJECT_ROOT
from study.settings import StudySettings

CLASSIFIER_MODULE = "models.classifiers.feedback"
_lock = threading.Lock()


def reveal_mask(height: int, width: int, points: Sequence[tuple[float, float]], radius: float) -> np.ndarray:
    """Boolean (height, width) map, True within `radius` (a fraction of the image width) of any
    point; points are (x, y) in [0, 1] image coordinates, x right, y down; pixel centres are at
    ((j + 0.5) / width, (i + 0.5) / height)."""
    mask = np.zeros((height, width), dtype=bool)
    if not points:
        return mask
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    # Distances in pixels of the image width so that bubbles are round on non-square images.
    px = pts[:, 0] * width
    py = pts[:, 1] * height
    r = radius * width
    yy, xx = np.mgrid[0:height, 0:width]
    cx, cy = xx + 0.5, yy + 0.5
    for x0, y0 in zip(px, py, strict=True):
        mask |= (cx - x0) ** 2 + (cy - y0) ** 2 <= r * r
    return mask


def revealed_image(
    image: np.ndarray, points: Sequence[tuple[float, float]], radius: float, fill: float = 0.0
) -> np.ndarray:
    """`image` ((H, W) float in [0, 1]) where revealed, `fill` elsewhere; float32 (H, W)."""
    mask = reveal_mask(image.shape[0], image.shape[1], points, radius)
    return np.where(mask, image, fill).astype(np.float32)


def load_gray(path: Path) -> np.ndarray:
    """A PNG as float32 (H, W) in [0, 1] (grey levels)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def classifier_path(app: Flask, settings: StudySettings) -> Path | None:
    """The checkpoint to use, or None when feedback is off or its checkpoint is missing."""
    operator = app.config.get("FEEDBACK_CLASSIFIER")
    raw = operator or settings.feedback_classifier
    if not raw:
        return None
    path = Path(raw)
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    path = path.resolve()
    if not operator:
        # A study's setting is researcher input, and loading a checkpoint unpickles it: only
        # files under the operator's checkpoint folder are allowed.
        allowed = Path(app.config["FEEDBACK_CLASSIFIER_DIR"]).resolve()
        if not path.is_relative_to(allowed):
            return None
    if not path.exists() or not _module_available():
        return None
    return path


def _module_available() -> bool:
    if CLASSIFIER_MODULE in sys.modules:
        return True
    try:
        return importlib.util.find_spec(CLASSIFIER_MODULE) is not None
    except (ImportError, ValueError):
        return False


def _classifier(app: Flask, path: Path) -> Any:
    cache = app.extensions.setdefault("feedback_classifiers", {})
    with _lock:
        if path not in cache:
            module = importlib.import_module(CLASSIFIER_MODULE)
            cache[path] = module.FeedbackClassifier.load(str(path), device=None)
        return cache[path]


def classify(
    app: Flask, path: Path, image: np.ndarray, points: Sequence[tuple[float, float]], radius: float
) -> tuple[str, float]:
    """The classifier's (label, probability) on the revealed part of `image`."""
    clf = _classifier(app, path)
    revealed = revealed_image(image, points, radius, fill=float(getattr(clf, "fill", 0.0)))
    label, prob = clf.predict(revealed[None])[0]
    return str(label), float(prob)
