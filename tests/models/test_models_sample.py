"""The steps of `models.sample.run_sampling` one at a time: the options and their one-line errors,
each checkpoint's sampler plan, sharding, batching, sampling a batch, the written exemplars and
the manifest's generator record. The end-to-end manifest contract is in test_models_cli.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from models import sample
from models.config import Config
from models.data import ImageDataset
from models.diffusion.unet import UNet
from models.sample import (
    Job,
    Loaded,
    SampleError,
    SamplerPlan,
    SamplingOptions,
    binarise,
    generate,
    generator_record,
    load_models,
    manifest_stem,
    model_batches,
    sample_batch,
    sampler_plan,
    schedule_of,
    shard_jobs,
    write_exemplars,
)


def _data(n_classes: int = 2, per_class: int = 3, size: int = 8) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    n = n_classes * per_class
    images = torch.rand(n, 1, size, size, generator=g) * 2 - 1
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    return ImageDataset(images, labels, [f"c{k}" for k in range(n_classes)],
                        [f"toy/c{k // per_class}/{k:03d}" for k in range(n)], "toy")


def _loaded(path: str = "a.pt", context: str = "class", sampling: dict | None = None, T: int = 20,
            split: dict | None = None, net: nn.Module | None = None) -> Loaded:
    cfg = Config(name=Path(path).stem, data={"dataset": "digits10", "size": 8}, model={"context": context},
                 diffusion={"T": T}, sampling=sampling or {"sampler": "ddim", "steps": 10, "eta": 0.25})
    meta = {"split": split or {"exemplars": {}}, "dataset_hash": "h", "code_version": "v"}
    return Loaded(path, net if net is not None else nn.Identity(), cfg, meta, _data(), "heldout")


def _model_job(sid: str, checkpoint: str = "a.pt", w: float = 0.0, seed: int = 0, class_index: int = 0,
               image_id: str = "") -> Job:
    return Job(stimulus_id=sid, source="model", class_label="c0", split="heldout", image_id=image_id,
               model="a", checkpoint=checkpoint, guidance=w, seed=seed, class_index=class_index)


def _real_job(sid: str, image_id: str = "toy/c0/001") -> Job:
    return Job(stimulus_id=sid, source="real", class_label="c0", split="heldout", image_id=image_id)


@pytest.mark.parametrize(("changes", "option"), [
    ({"batch_size": 0}, "--batch-size"),
    ({"set_size": 0}, "--set-size"),
    ({"shard": (2, 2)}, "--shard"),
    ({"shard": (0, 0)}, "--shard"),
    ({"n_per_class": -1}, "--n-per-class"),
    ({"real_per_class": -1}, "--real"),
    ({"postprocess": "grey"}, "--postprocess"),
    ({"sampler": "euler"}, "--sampler"),
    ({"guidance": ()}, "--guidance"),
    ({"guidance": (0.0, -1.0)}, "--guidance"),
    ({"eta": -0.1}, "--eta"),
    ({"use_split": "test"}, "--split"),
])
def test_each_bad_option_is_refused_with_its_name(changes, option):
    with pytest.raises(SampleError) as exc:
        SamplingOptions(**{"n_per_class": 1, **changes})
    message = str(exc.value)
    assert message.startswith(f"{option}") and "\n" not in message


def test_options_are_frozen_and_keep_guidance_as_a_tuple():
    options = SamplingOptions(n_per_class=2, guidance=[0.0, 1.5])
    assert options.guidance == (0.0, 1.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seed = 1  # type: ignore[misc]


def test_sampler_plan_takes_options_over_the_checkpoint_config():
    m = _loaded(sampling={"sampler": "ddim", "steps": 10, "eta": 0.25})
    assert sampler_plan(m, SamplingOptions(n_per_class=1)) == SamplerPlan("ddim", 10, 0.25)
    given = SamplingOptions(n_per_class=1, sampler="dpmpp_2m", steps=4, eta=0.0)
    assert sampler_plan(m, given) == SamplerPlan("dpmpp_2m", 4, 0.0)


def test_sampler_plan_records_all_T_steps_for_ddpm_and_refuses_steps_beyond_T():
    m = _loaded(T=20)
    assert sampler_plan(m, SamplingOptions(n_per_class=1, sampler="ddpm", steps=5)).steps == 20
    with pytest.raises(SampleError, match=r"^--steps: must be in 1\.\.20 for a\.pt"):
        sampler_plan(m, SamplingOptions(n_per_class=1, steps=21))


@pytest.mark.parametrize(("kwargs", "field"), [({"steps": 0}, "--steps"), ({"max_classes": 0}, "--max-classes"),
                                              ({"max_classes": -3}, "--max-classes")])
def test_steps_and_max_classes_below_one_are_refused_not_read_as_the_default(kwargs, field):
    with pytest.raises(SampleError, match=f"^{field}: must be >= 1"):
        SamplingOptions(n_per_class=1, **kwargs)


def test_shards_cover_every_job_exactly_once_in_order():
    jobs = [_real_job(f"real-{k}") for k in range(7)]
    shards = [shard_jobs(jobs, (i, 3)) for i in range(3)]
    assert [j.stimulus_id for j in shards[1]] == ["real-1", "real-4"]
    assert sorted(j.stimulus_id for s in shards for j in s) == sorted(j.stimulus_id for j in jobs)
    assert shard_jobs(jobs, (0, 1)) == jobs


def test_model_batches_keep_one_checkpoint_and_scale_per_call():
    jobs = [_model_job("a0", w=0.0), _real_job("r0"), _model_job("a1", w=1.0), _model_job("a2", w=0.0),
            _model_job("a3", w=0.0), _model_job("b0", checkpoint="b.pt", w=0.0)]
    batches = [[j.stimulus_id for j in b] for b in model_batches(jobs, batch_size=2)]
    assert batches == [["a0", "a2"], ["a3"], ["a1"], ["b0"]]


def test_binarise_thresholds_at_zero():
    x = torch.tensor([-0.7, -0.0, 0.0, 1e-6, 0.4])
    assert binarise(x).tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]


def test_sample_batch_is_each_samples_own_generate_call():
    torch.manual_seed(0)
    net = UNet(8, 8, (1, 2), 1, "class", n_classes=2).eval()
    nn.init.normal_(net.conv_out.weight, std=0.1)
    m = _loaded(net=net)
    schedule, plan = schedule_of(m.cfg), SamplerPlan("ddim", 3, 0.0)
    batch = [_model_job("a0", w=1.0, seed=5, class_index=0), _model_job("a1", w=1.0, seed=9, class_index=1)]
    grey = sample_batch(m, schedule, plan, batch, 1, "none", torch.device("cpu"))
    assert grey.shape == (2, 1, 8, 8)
    for k, job in enumerate(batch):
        alone = generate(net, schedule, torch.tensor([job.class_index]), [job.seed], 1.0, "ddim", 3, 0.0, "cpu")
        torch.testing.assert_close(grey[k : k + 1], alone)
    binary = sample_batch(m, schedule, plan, batch, 1, "binarise", torch.device("cpu"))
    assert torch.equal(binary, binarise(grey))


def test_write_exemplars_writes_each_model_jobs_exemplar_once(tmp_path):
    data = _data()
    jobs = [_model_job("a1", image_id="toy/c1/004"), _model_job("a0", image_id="toy/c0/000"),
            _model_job("a2", image_id="toy/c0/000"), _real_job("r0", image_id="toy/c0/001")]
    entries = write_exemplars(jobs, data, tmp_path)
    assert [(e["exemplar_id"], e["class_label"]) for e in entries] == [("toy/c0/000", "c0"), ("toy/c1/004", "c1")]
    assert sorted(p.name for p in (tmp_path / "exemplars").iterdir()) == ["toy-c0-000.png", "toy-c1-004.png"]


def test_generator_record_names_the_options_as_given_and_each_checkpoints_plan():
    m = _loaded(sampling={"sampler": "ddim", "steps": 10, "eta": 0.25, "guidance": [0.0, 2.0]})
    options = SamplingOptions(n_per_class=3, steps=7, shard=(1, 4), seed=2)
    record = generator_record([m], {m.path: sampler_plan(m, options)}, options, torch.device("cpu"), ["n"], 40)
    assert list(record) == ["command", "checkpoints", "sampler", "steps", "eta", "guidance", "n_per_class",
                            "real_per_class", "seed", "set_size", "postprocess", "shard", "device", "notes",
                            "ink", "n_total"]
    assert (record["sampler"], record["steps"], record["eta"], record["guidance"]) == (None, 7, None, None)
    assert (record["shard"], record["n_total"], record["notes"]) == ("1/4", 40, ["n"])
    (ckpt,) = record["checkpoints"]
    assert {k: ckpt[k] for k in ("sampler", "steps", "eta", "guidance", "T")} == {
        "sampler": "ddim", "steps": 7, "eta": 0.25, "guidance": [0.0, 2.0], "T": 20}


def test_manifest_stem_names_shards():
    assert manifest_stem((0, 1)) == "manifest"
    assert manifest_stem((2, 3)) == "manifest.shard2of3"


def test_load_models_refuses_checkpoints_on_another_split(monkeypatch):
    loaded = {"a.pt": _loaded("a.pt", split={"exemplars": {"c0": "x"}}),
              "b.pt": _loaded("b.pt", split={"exemplars": {"c0": "y"}})}
    monkeypatch.setattr(sample, "_load", lambda path, *args: loaded[path])
    assert [m.path for m in load_models(["a.pt"], torch.device("cpu"), "auto", None)] == ["a.pt"]
    with pytest.raises(SampleError, match=r"^checkpoints: b\.pt uses another data split or size than a\.pt"):
        load_models(["a.pt", "b.pt"], torch.device("cpu"), "auto", None)
