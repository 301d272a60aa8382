"""TOML configs: the shipped ones load, bad fields are errors that name the field."""

from pathlib import Path

import pytest

from models.config import ConfigError, config_from_dict, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "models" / "configs").glob("*.toml"))


def test_shipped_configs_load_and_differ_only_as_configurations():
    assert {p.stem for p in CONFIGS} >= {"tiny_ddpm", "tiny_cfgdm", "tiny_fsdm", "omniglot_cfgdm", "quickdraw_cfgdm"}
    cfgs = {p.stem: load_config(p) for p in CONFIGS}
    assert cfgs["tiny_ddpm"].training.p_uncond == 0.0
    assert cfgs["tiny_cfgdm"].training.p_uncond == 0.1
    assert cfgs["tiny_fsdm"].model.context == "set"
    assert cfgs["tiny_ddpm"].model == cfgs["tiny_cfgdm"].model
    for name in ("omniglot_cfgdm", "quickdraw_cfgdm"):
        assert cfgs[name].diffusion.T == 500
    assert cfgs["omniglot_cfgdm"].model.n_feat == 48 and cfgs["quickdraw_cfgdm"].model.n_feat == 60


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"model": {"n_feat": "big"}}, "model.n_feat: expected an integer"),
        ({"model": {"nfeat": 8}}, "model.nfeat: unknown field"),
        ({"training": {"p_uncond": 1.5}}, "training.p_uncond"),
        ({"diffusion": {"schedule": "sigmoid"}}, "diffusion.schedule"),
        ({"data": {"dataset": "omniglot"}}, "data.root"),
        ({"data": {"size": 10}, "model": {"channel_mults": [1, 2, 2]}}, "model.channel_mults"),
        ({"sampling": {"steps": 600}}, "sampling.steps"),
        ({"training": {"amp": "yes"}}, "training.amp"),
        ({"colour": 1}, "colour: unknown field"),
        ({"data": {"threshold": 1.5}}, "data.threshold: must be a number in"),
        ({"data": {"threshold": True}}, "data.threshold"),
        ({"diffusion": {"beta_start": 0.1, "beta_end": 0.01}}, "diffusion.beta_start"),
        ({"model": {"channel_mults": [1, "2"]}}, r"model.channel_mults\[1\]: expected an integer"),
        ({"sampling": {"guidance": []}}, "sampling.guidance"),
    ],
)
def test_bad_fields_are_named(patch, field):
    data = {"name": "x", **patch}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        config_from_dict(data)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_replace_revalidates():
    cfg = config_from_dict({"name": "x"})
    assert cfg.replace("training", steps=5).training.steps == 5
    with pytest.raises(ConfigError, match="training.steps"):
        cfg.replace("training", steps=0)
