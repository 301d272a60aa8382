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
    diffusion = [m for m in modelmaps.METHODS if not m.startswith("feedback_")]
    monkeypatch.setattr(modelmaps, "load_diffusion", lambda path, device: (None, None, {}))
    monkeypatch.setattr(modelmaps, "schedule_of", lambda cfg: None)
    monkeypatch.setattr(modelmaps, "diffusion_maps",
                        lambda *a, **k: {m: (out[m], {"n_draws": 1}) for m in diffusion})
    monkeypatch.setattr(modelmaps, "classifier_maps",
                        lambda *a, **k: {m: out[m] for m in modelmaps.METHODS if m not in diffusion})
    return out


def _call(out: Path, ids: list[str]) -> list[str]:
    images = torch.zeros(len(ids), 1, 8, 8)
    return modelmaps.stimulus_maps(out, ids, images, images, torch.zeros(len(ids), dtype=torch.long),
                                   Path("cfgdm.pt"), SimpleNamespace(net=None), Path("feedback.pt"),
                                   torch.device("cpu"), seed=0)


def test_maps_saved_under_their_true_names(tmp_path: Path, fake_methods: dict[str, np.ndarray]) -> None:
    ids = ["s1", "s2", "s3"]
    methods = _call(tmp_path, ids)
    assert methods == ["diffusion_score_noised", "guidance_difference", "conditional_gain", "feedback_saliency",
                       "feedback_gradcam"]
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


def test_diffusion_maps_record_the_draws_they_ran_with() -> None:
    from models.attribution import methods as M
    from models.diffusion.schedule import make_schedule
    from models.diffusion.unet import UNet

    torch.manual_seed(0)
    net = UNet(image_size=8, n_feat=8, channel_mults=(1,), context="exemplar").eval()
    torch.nn.init.normal_(net.conv_out.weight, std=0.05)
    images = torch.rand(2, 1, 8, 8) * 2 - 1
    got = modelmaps.diffusion_maps(net, make_schedule("linear", 20), images, images.flip(0), 0, torch.device("cpu"))
    assert list(got) == ["diffusion_score_noised", "guidance_difference", "conditional_gain"]
    for maps, _params in got.values():
        assert maps.shape == (2, 8, 8) and (maps >= 0).all()
    want = M.guidance_difference(net, make_schedule("linear", 20), images, images.flip(0), seed=0)
    np.testing.assert_allclose(got["guidance_difference"][0], want, rtol=1e-6)
    assert got["guidance_difference"][1]["n_draws"] == 8 and got["conditional_gain"][1]["n_draws"] == 16
