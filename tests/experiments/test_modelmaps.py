"""experiments.modelmaps writes each map under its true method name through
models.attribution.store.write_maps (docs/formats.md section 4), with that writer's checks."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from analysis.load import load_maps
from experiments import modelmaps


@pytest.fixture()
def fake_methods(monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """Replace the model calls with fixed maps, so the test checks the writing only."""
    rng = np.random.default_rng(0)
    out = {name: rng.random((3, 8, 8)).astype(np.float32) for name in modelmaps.METHODS}
    monkeypatch.setattr(modelmaps, "load_checkpoint", lambda path, device: (None, None, {}))
    monkeypatch.setattr(modelmaps, "schedule_of", lambda cfg: None)
    monkeypatch.setattr(modelmaps, "diffusion_score_noised",
                        lambda *a, **k: out["diffusion_score_noised"])
    monkeypatch.setattr(modelmaps, "saliency", lambda *a, **k: out["feedback_saliency"])
    monkeypatch.setattr(modelmaps, "gradcam", lambda *a, **k: out["feedback_gradcam"])
    return out


def _call(out: Path, ids: list[str]) -> list[str]:
    images = torch.zeros(len(ids), 1, 8, 8)
    return modelmaps.stimulus_maps(out, ids, images, images, torch.zeros(len(ids), dtype=torch.long),
                                   Path("cfgdm.pt"), SimpleNamespace(net=None), Path("feedback.pt"),
                                   torch.device("cpu"), seed=0)


def test_maps_saved_under_their_true_names(tmp_path: Path, fake_methods: dict[str, np.ndarray]) -> None:
    ids = ["s1", "s2", "s3"]
    methods = _call(tmp_path, ids)
    assert methods == ["diffusion_score_noised", "feedback_saliency", "feedback_gradcam"]
    # "diffusion_score" is the sampling-path variant of models.attribution.cli, not this one.
    assert not (tmp_path / "diffusion_score").exists()
    for method in methods:
        index = json.loads((tmp_path / method / "index.json").read_text())
        assert index["method"] == method and index["stimulus_ids"] == ids
        assert index["shard"] == "0/1" and index["skipped"] == {}  # write_maps' fields
    loaded = load_maps(tmp_path)  # what analysis/report reads
    assert set(loaded) == set(methods)
    np.testing.assert_allclose(loaded["diffusion_score_noised"]["s2"], fake_methods["diffusion_score_noised"][1])


def test_unsafe_ids_and_negative_maps_are_refused(tmp_path: Path, fake_methods: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="stimulus_id"):
        _call(tmp_path / "a", ["s1", "../evil", "s3"])
    fake_methods["diffusion_score_noised"][0, 0, 0] = -1.0
    with pytest.raises(ValueError, match="negative or non-finite"):
        _call(tmp_path / "b", ["s1", "s2", "s3"])
