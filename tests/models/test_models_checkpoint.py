"""Checkpoint round trip, EMA vs raw weights, config mismatch, foreign files, generic kinds, the
diffusion kind as a plug-in."""

import pytest
import torch
from torch import nn

from models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    register_builder,
    save_checkpoint,
)
from models.config import config_from_dict
from models.diffusion.store import load_diffusion
from models.diffusion.unet import UNet


def _cfg(**model):
    return config_from_dict({"name": "t", "data": {"size": 8}, "model": {"context": "class", "n_feat": 8, **model}})


def test_round_trip_keeps_weights_ema_config_meta(tmp_path):
    torch.manual_seed(0)
    net = UNet(8, 8, (1, 2), 1, "class", n_classes=3)
    ema = UNet(8, 8, (1, 2), 1, "class", n_classes=3)
    path = save_checkpoint(tmp_path / "c.pt", net, _cfg(), {"dataset_hash": "abc", "metrics": {"loss": 0.1}}, ema=ema)
    loaded, cfg, meta = load_diffusion(path, "cpu", weights="raw")
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    loaded_ema, _, _ = load_diffusion(path, "cpu")
    for k, v in ema.state_dict().items():
        assert torch.equal(loaded_ema.state_dict()[k], v)
    assert cfg == _cfg() and meta["dataset_hash"] == "abc" and meta["metrics"] == {"loss": 0.1}
    assert meta["code_version"].startswith(("git:", "package:", "unknown"))
    assert not loaded.training and loaded.arch == net.arch
    x, t, c = torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), torch.tensor([0, 1])
    assert torch.equal(loaded(x, t, c), net.eval()(x, t, c))


def test_mismatched_config_is_a_clear_error(tmp_path):
    net = UNet(8, 8, (1, 2), 1, "class", n_classes=3)
    path = save_checkpoint(tmp_path / "c.pt", net, _cfg(), {})
    with pytest.raises(CheckpointError, match=r"model\.n_feat: checkpoint 8, config 16"):
        load_diffusion(path, "cpu", config=_cfg(n_feat=16))
    load_diffusion(path, "cpu", config=_cfg().replace("training", steps=7))  # training may differ
    load_diffusion(path, "cpu", config=_cfg().replace("data", root="/moved"))  # so may the data's place


def test_foreign_and_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "none.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not a"):
        read_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")


class _Tiny(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.arch = {"width": width}
        self.lin = nn.Linear(width, 2)


def test_generic_kind_via_registry(tmp_path):
    register_builder("test-tiny", _Tiny)
    net = _Tiny(5)
    path = save_checkpoint(tmp_path / "k.pt", net, {"kind": "test-tiny", "lr": 0.1}, {"acc": 0.9}, kind="test-tiny")
    loaded, cfg, meta = load_checkpoint(path, "cpu")
    assert isinstance(loaded, _Tiny) and cfg == {"kind": "test-tiny", "lr": 0.1} and meta["acc"] == 0.9
    assert torch.equal(loaded.lin.weight, net.lin.weight)
    payload = read_checkpoint(path)
    payload["kind"] = "nobody"
    torch.save(payload, tmp_path / "u.pt")
    with pytest.raises(CheckpointError, match="unknown kind 'nobody'"):
        load_checkpoint(tmp_path / "u.pt", "cpu")


def test_load_diffusion_refuses_another_kind(tmp_path):
    register_builder("test-tiny", _Tiny)
    path = save_checkpoint(tmp_path / "k.pt", _Tiny(3), {"kind": "test-tiny"}, {}, kind="test-tiny")
    with pytest.raises(CheckpointError, match="holds a 'test-tiny', not a diffusion model"):
        load_diffusion(path, "cpu")


def test_the_diffusion_kind_is_known_only_once_its_plug_in_is_imported(tmp_path):
    """models.checkpoint on its own builds no UNet (it imports no network); importing
    models.diffusion.store registers the kind."""
    import subprocess
    import sys

    path = save_checkpoint(tmp_path / "c.pt", UNet(8, 8, (1, 2), 1, "class", n_classes=3), _cfg(), {})
    load = f"net, cfg, meta = load_checkpoint({str(path)!r}, 'cpu'); print(type(net).__name__, cfg.name)"
    alone = subprocess.run([sys.executable, "-c", f"from models.checkpoint import load_checkpoint; {load}"],
                           capture_output=True, text=True)
    assert alone.returncode != 0 and "unknown kind 'diffusion'" in alone.stderr
    assert "models.diffusion.store" in alone.stderr
    plugged = subprocess.run(
        [sys.executable, "-c", f"import models.diffusion.store; from models.checkpoint import load_checkpoint; {load}"],
        capture_output=True, text=True, check=True)
    assert plugged.stdout.split() == ["UNet", "t"]
