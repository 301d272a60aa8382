"""`python -m models`: train/sample/merge end to end on a tiny model, the manifest contract
(docs/formats.md section 1), shards, and one-line errors naming the field."""

import csv
import hashlib
import json
from pathlib import Path

import pytest

from models import cli
from models.sample import COLUMNS

TINY = """name = "{name}"
seed = 0
[data]
dataset = "{dataset}"
{root}size = 8
heldout_classes = 2
max_per_class = 12
[model]
context = "{context}"
n_feat = {n_feat}
[diffusion]
T = 20
[training]
steps = 3
batch_size = 8
p_uncond = {p_uncond}
log_every = 1
[sampling]
steps = 10
"""


def write_cfg(path: Path, name="cfgdm", context="exemplar", n_feat=4, p_uncond=0.1, dataset="digits10", root=""):
    path.write_text(TINY.format(name=name, context=context, n_feat=n_feat, p_uncond=p_uncond,
                                dataset=dataset, root=f'root = "{root}"\n' if root else ""))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    out = {}
    for name, context, p in [("cfgdm", "exemplar", 0.1), ("ddpm", "exemplar", 0.0), ("fsdm", "set", 0.1)]:
        cfg = write_cfg(base / f"{name}.toml", name, context, p_uncond=p)
        assert cli.main(["train", str(cfg), "--out", str(base / name), "--device", "cpu", "--no-progress"]) == 0
        out[name] = (cfg, base / name / "checkpoint.pt")
    return out


def _rows(folder: Path):
    with (folder / "manifest.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_sample_writes_manifest_contract(trained, tmp_path, capsys):
    ckpt = str(trained["cfgdm"][1])
    rc = cli.main(["sample", ckpt, "--out", str(tmp_path), "--n-per-class", "2", "--guidance", "0,1",
                   "--real", "2", "--device", "cpu", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    with (tmp_path / "manifest.csv").open() as fh:
        assert next(csv.reader(fh)) == COLUMNS
    rows = _rows(tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["version"] == 1 and "created" in doc and doc["generator"]["checkpoints"][0]["sampler"] == "ddim"
    assert [r["stimulus_id"] for r in doc["stimuli"]] == [r["stimulus_id"] for r in rows]
    model = [r for r in rows if r["source"] == "model"]
    real = [r for r in rows if r["source"] == "real"]
    assert len(model) == 2 * 2 * 2 and len(real) == 2 * 2
    assert len({r["stimulus_id"] for r in rows}) == len(rows)
    assert "cfgdm-w1.0-c001-e0-s1" in {r["stimulus_id"] for r in model}
    exemplars = {e["exemplar_id"] for e in doc["exemplars"]}
    for r in rows:
        data = (tmp_path / r["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"]
        assert r["split"] == "heldout" and r["dataset"] == "digits10" and r["role"] == "main"
        assert r["width"] == r["height"] == "8"
        # digits10 classes are the plain digits: the text names the digit of the class id
        assert r["class_text"] == f"the digit {r['class_label'].removeprefix('digit')}"
    for r in model:
        assert r["model"] == "cfgdm" and r["sampler"] == "ddim" and r["steps"] == "10"
        assert r["exemplar_id"] in exemplars and r["checkpoint"] == ckpt
    for r in real:
        assert r["model"] == r["guidance"] == r["seed"] == r["exemplar_id"] == ""
        assert r["stimulus_id"].removeprefix("real-").replace("-", "/") not in exemplars
    # the same noise seed is used for a sample at every guidance scale (paired comparison)
    seeds = {r["stimulus_id"]: r["seed"] for r in model}
    assert seeds["cfgdm-w0.0-c000-e0-s1"] == seeds["cfgdm-w1.0-c000-e0-s1"]
    assert (tmp_path / doc["exemplars"][0]["path"]).exists()
    # samples are binarised like the real images by default
    from models.data.preprocess import load_stimulus

    for r in rows:
        assert set(load_stimulus(str(tmp_path / r["path"])).unique().tolist()) <= {-1.0, 1.0}
    assert doc["generator"]["postprocess"] == "binarise"


def test_postprocess_none_keeps_grey_levels(trained, tmp_path):
    assert cli.main(["sample", str(trained["cfgdm"][1]), "--out", str(tmp_path), "--n-per-class", "3",
                     "--postprocess", "none", "--threads", "1", "--device", "cpu", "--no-progress"]) == 0
    from models.data.preprocess import load_stimulus

    values = set()
    for r in _rows(tmp_path):
        values |= set(load_stimulus(str(tmp_path / r["path"])).unique().tolist())
    assert len(values) > 2


def test_shards_merge_to_the_unsharded_run(trained, tmp_path):
    ckpt = str(trained["cfgdm"][1])
    args = ["--n-per-class", "2", "--guidance", "0,2", "--real", "1", "--device", "cpu", "--no-progress",
            "--batch-size", "1"]
    assert cli.main(["sample", ckpt, "--out", str(tmp_path / "one"), *args]) == 0
    for i in range(3):
        assert cli.main(["sample", ckpt, "--out", str(tmp_path / "sh"), "--shard", f"{i}/3", *args]) == 0
    assert not (tmp_path / "sh" / "manifest.csv").exists()
    assert cli.main(["merge", str(tmp_path / "sh")]) == 0
    assert _rows(tmp_path / "sh") == _rows(tmp_path / "one")


def test_merge_refuses_incomplete_shards(trained, tmp_path, capsys):
    ckpt = str(trained["cfgdm"][1])
    cli.main(["sample", ckpt, "--out", str(tmp_path), "--shard", "0/2", "--n-per-class", "1",
              "--device", "cpu", "--no-progress"])
    assert cli.main(["merge", str(tmp_path)]) == 2
    assert "do not make one complete run" in capsys.readouterr().err


def test_several_checkpoints_one_manifest_ddpm_gets_w0_only(trained, tmp_path):
    ckpts = [str(trained[n][1]) for n in ("ddpm", "cfgdm", "fsdm")]
    assert cli.main(["sample", *ckpts, "--out", str(tmp_path), "--n-per-class", "1", "--guidance",
                     "0,1", "--set-size", "2", "--device", "cpu", "--no-progress"]) == 0
    rows = _rows(tmp_path)
    by_model = {}
    for r in rows:
        by_model.setdefault(r["model"], set()).add(r["guidance"])
    assert by_model == {"ddpm": {"0.0"}, "cfgdm": {"0.0", "1.0"}, "fsdm": {"0.0", "1.0"}}
    notes = json.loads((tmp_path / "manifest.json").read_text())["generator"]["notes"]
    assert any("ddpm" in n for n in notes)


def test_ddpm_sampler_uses_T_steps(trained, tmp_path):
    assert cli.main(["sample", str(trained["cfgdm"][1]), "--out", str(tmp_path), "--n-per-class", "1",
                     "--sampler", "ddpm", "--max-classes", "1", "--device", "cpu", "--no-progress"]) == 0
    rows = _rows(tmp_path)
    assert len(rows) == 1 and rows[0]["sampler"] == "ddpm" and rows[0]["steps"] == "20"


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_error_missing_data_folder(tmp_path, capsys):
    cfg = write_cfg(tmp_path / "c.toml", dataset="folder", root=str(tmp_path / "nowhere"))
    assert cli.main(["train", str(cfg), "--out", str(tmp_path / "o"), "--device", "cpu", "--no-progress"]) == 2
    assert "data.root" in _error(capsys)


def test_error_bad_config_field(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(write_cfg(tmp_path / "ok.toml").read_text().replace("n_feat = 4", 'n_feat = "wide"'))
    assert cli.main(["train", str(cfg), "--device", "cpu"]) == 2
    assert "model.n_feat: expected an integer" in _error(capsys)


def test_error_checkpoint_does_not_match_config(trained, tmp_path, capsys):
    other = write_cfg(tmp_path / "other.toml", n_feat=8)
    rc = cli.main(["sample", str(trained["cfgdm"][1]), "--out", str(tmp_path), "--config", str(other)])
    assert rc == 2
    err = _error(capsys)
    assert "does not match" in err and "model.n_feat: checkpoint 4, config 8" in err
    out = tmp_path / "resume"
    cli.main(["train", str(trained["cfgdm"][0]), "--out", str(out), "--device", "cpu", "--no-progress"])
    assert cli.main(["train", str(other), "--out", str(out), "--resume", "--device", "cpu", "--no-progress"]) == 2
    assert "model.n_feat" in _error(capsys)


def test_error_missing_checkpoint_and_bad_options(tmp_path, capsys):
    assert cli.main(["sample", str(tmp_path / "none.pt"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in _error(capsys)
    with pytest.raises(SystemExit) as exc:
        cli.main(["sample", "x.pt", "--out", str(tmp_path), "--shard", "3/2"])
    assert exc.value.code == 2 and "--shard" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sample", "x.pt", "--out", str(tmp_path), "--guidance", "0,strong"])


def test_delegated_command_missing_module(monkeypatch, capsys):
    monkeypatch.setitem(cli.DELEGATES, "classifier", "models.no_such_package.cli")
    assert cli.main(["classifier", "train"]) == 2
    assert "models.no_such_package.cli" in _error(capsys)


def test_unconditional_model_samples(tmp_path):
    cfg = write_cfg(tmp_path / "u.toml", name="uncond", context="none", p_uncond=0.0)
    assert cli.main(["train", str(cfg), "--out", str(tmp_path / "m"), "--device", "cpu", "--no-progress"]) == 0
    assert cli.main(["sample", str(tmp_path / "m" / "checkpoint.pt"), "--out", str(tmp_path / "s"),
                     "--n-per-class", "3", "--real", "1", "--device", "cpu", "--no-progress"]) == 0
    rows = _rows(tmp_path / "s")
    model = [r for r in rows if r["source"] == "model"]
    assert len(model) == 3 and {r["class_label"] for r in model} == {"unconditional"}
    assert {r["class_text"] for r in model} == {""}  # no class to tell a participant about
    assert all(r["class_text"].startswith("the digit ") for r in rows if r["source"] == "real")
    assert all(r["exemplar_id"] == "" for r in model)


def test_classifier_and_attribute_commands_are_dispatched():
    for name in ("classifier", "attribute"):
        try:
            rc = cli.main([name, "--help"])
        except SystemExit as exc:
            rc = exc.code
        assert rc == 0
