"""Training: a tiny model learns and its guided samples show their class; seeded resume is exact;
resuming with another config is refused; DDP with gloo on CPU in 2 processes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from models.checkpoint import CheckpointError, read_checkpoint
from models.config import config_from_dict
from models.diffusion.store import load_diffusion
from models.diffusion.training import load_training_data, train
from models.sample import generate, schedule_of

ROOT = Path(__file__).resolve().parents[2]


def _tiny(**training):
    return config_from_dict({
        "name": "tiny", "seed": 1,
        "data": {"dataset": "digits10", "size": 8, "heldout_classes": 2, "max_per_class": 20},
        "model": {"context": "exemplar", "n_feat": 4, "channel_mults": [1, 2]},
        "diffusion": {"T": 20},
        "training": {"steps": 6, "batch_size": 8, "checkpoint_every": 3, "log_every": 1,
                     "p_uncond": 0.1, **training},
        "sampling": {"steps": 10},
    })


@pytest.mark.slow
def test_tiny_model_learns_and_guided_samples_show_their_class(tmp_path):
    cfg = config_from_dict({
        "name": "learn", "seed": 0,
        "data": {"dataset": "digits10", "size": 16, "heldout_classes": 0},
        "model": {"context": "class", "n_feat": 16, "channel_mults": [1, 2]},
        "diffusion": {"T": 200},
        "training": {"steps": 400, "batch_size": 64, "lr": 3e-3, "warmup": 50, "p_uncond": 0.1,
                     "log_every": 25, "ema_decay": 0.99},
    })
    result = train(cfg, tmp_path, device="cpu", progress=False)
    m = result.metrics
    assert m["steps"] == 400 and m["loss_last"] < 0.3 * m["loss_first"]
    train_set, _, _ = load_training_data(cfg)
    clf = LogisticRegression(max_iter=500).fit(train_set.images.flatten(1).numpy(), train_set.labels.numpy())
    assert clf.score(train_set.images.flatten(1).numpy(), train_set.labels.numpy()) > 0.9
    net, loaded_cfg, _ = load_diffusion(result.checkpoint, "cpu")
    labels = torch.arange(10).repeat_interleave(10)
    x = generate(net, schedule_of(loaded_cfg), labels, list(range(100)), w=2.0, sampler="ddim", steps=20)
    acc = float((clf.predict(torch.sign(x).flatten(1).numpy()) == labels.numpy()).mean())
    assert acc >= 0.4, f"guided samples classified at {acc:.2f} (chance 0.10)"


def test_resume_continues_exactly(tmp_path):
    full = train(_tiny(), tmp_path / "full", device="cpu", progress=False)
    train(_tiny(steps=3), tmp_path / "part", device="cpu", progress=False)
    resumed = train(_tiny(), tmp_path / "part", device="cpu", resume=True, progress=False)
    a, b = read_checkpoint(full.checkpoint), read_checkpoint(resumed.checkpoint)
    for key in ("state_dict", "ema_state_dict"):
        for name, value in a[key].items():
            assert torch.equal(value, b[key][name]), f"{key}.{name} differs after resume"
    assert a["train_state"]["history"] == b["train_state"]["history"]
    assert b["meta"]["metrics"]["steps"] == 6


def test_resume_with_other_config_is_refused(tmp_path):
    train(_tiny(steps=2), tmp_path, device="cpu", progress=False)
    other = config_from_dict({**_tiny().to_dict(), "model": {**_tiny().to_dict()["model"], "n_feat": 8}})
    with pytest.raises(CheckpointError, match=r"model\.n_feat"):
        train(other, tmp_path, device="cpu", resume=True, progress=False)


def test_checkpoint_records_data_hash_split_and_t_range(tmp_path, monkeypatch):
    seen = []
    import models.diffusion.training as training

    real_loss = training.diffusion_loss

    def spy(net, x0, t, noise, context, schedule, *args):
        seen.append(t.clone())
        return real_loss(net, x0, t, noise, context, schedule, *args)

    monkeypatch.setattr(training, "diffusion_loss", spy)
    res = train(_tiny(steps=40, batch_size=32), tmp_path, device="cpu", progress=False)
    ts = torch.cat(seen)
    assert int(ts.min()) == 1 and int(ts.max()) == 20  # t uniform over 1..T, T included
    meta = read_checkpoint(res.checkpoint)["meta"]
    assert len(meta["dataset_hash"]) == 64 and len(meta["split"]["heldout_classes"]) == 2
    assert meta["metrics"]["world_size"] == 1 and meta["code_version"]


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(
        'name = "ddp"\nseed = 2\n[data]\ndataset = "digits10"\nsize = 8\nheldout_classes = 2\n'
        "max_per_class = 20\n[model]\ncontext = \"exemplar\"\nn_feat = 4\n[diffusion]\nT = 20\n"
        "[training]\nsteps = 4\nbatch_size = 4\nlog_every = 1\n[sampling]\nsteps = 10\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "models", "train", str(cfg), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = read_checkpoint(tmp_path / "out" / "checkpoint.pt")
    assert payload["meta"]["metrics"]["world_size"] == 2
    rngs = payload["train_state"]["rng"]
    assert len(rngs) == 2 and not torch.equal(rngs[0], rngs[1])  # each rank drew its own batches
    assert proc.stdout.count("checkpoint:") == 1  # only rank 0 reports and writes


def test_exit_rank_flushes_output_and_skips_finalization():
    """A finished rank leaves with its code and its printed lines, without atexit/finalization
    (where gloo's threads can abort the process)."""
    script = (
        "import atexit, sys\n"
        "from models.diffusion.ddp import exit_rank\n"
        "atexit.register(lambda: print('finalized'))\n"
        "print('saved', end='')\n"
        "sys.stderr.write('note')\n"
        "exit_rank(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 3
    assert proc.stdout == "saved" and proc.stderr == "note"


def test_launched_ranks_reads_world_size(monkeypatch):
    from models.diffusion.ddp import launched_ranks

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launched_ranks() == 1
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert launched_ranks() == 4
