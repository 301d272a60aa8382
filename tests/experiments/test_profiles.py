"""Profiles load, apply overrides and refuse bad values with messages naming the field."""

from __future__ import annotations

import re

import pytest

from experiments.profiles import ProfileError, load_profile, parse_override


def test_tiny_profile_builds_three_models_with_its_overrides() -> None:
    p = load_profile("tiny")
    assert [m.name for m in p.models] == ["ddpm", "cfgdm", "fsdm"]
    assert all(m.training.steps == p.raw["models"]["set"]["training.steps"] for m in p.models)
    assert all(m.data.dataset == "digits" for m in p.models)
    cfg = {m.name: m for m in p.models}
    assert cfg["ddpm"].training.p_uncond == 0.0 and cfg["cfgdm"].training.p_uncond > 0
    assert p.section("sampling")["guidance"] == [0.0, 0.5, 1.0, 2.0]


def test_full_profile_is_the_seed_papers_size(tmp_path) -> None:
    p = load_profile("full", data_root=str(tmp_path))
    for m in p.models:
        assert m.diffusion.T == 500 and m.model.n_feat == 48
        assert m.data.dataset == "omniglot" and m.data.root == str(tmp_path.resolve())


def test_full_profile_needs_data() -> None:
    with pytest.raises(ProfileError, match="--data"):
        load_profile("full")


def test_seed_and_overrides_reach_every_model() -> None:
    p = load_profile("tiny", overrides=["models.set.training.steps=7", "sampling.n_per_class=3"], seed=5)
    assert {m.training.steps for m in p.models} == {7}
    assert {m.seed for m in p.models} == {5}
    assert p.section("sampling")["n_per_class"] == 3
    assert p.digest() != load_profile("tiny").digest()


@pytest.mark.parametrize(("override", "field"), [
    ("sampling.n_per_class=0", "sampling.n_per_class"),
    ("sampling.guidance=[0.5, 1.0]", "sampling.guidance"),
    ("facade.archs=[\"vgg\"]", "facade.archs"),
    ("facade.fractions=[0.0, 1.0]", "facade.fractions"),
    ("study.workers=\"two\"", "study.workers"),
    ("models.set.model.n_feat=0", "model.n_feat"),
    ("models.set.training.bogus=1", "training.bogus"),
    ("study.colour=1", "study.colour: unknown field"),
    ("facade.test_fraction=1.0", "facade.test_fraction: must be < 1"),
    ("sampling.steps=true", "sampling.steps: expected an integer"),
    ("critics.protonet_within_alphabet=1.5", "critics.protonet_within_alphabet"),
    ("critics.protonet_within_alphabet=0.5", "critics.protonet_within_alphabet: needs alphabets"),
    ("critics.protonet_test_shift=5", "critics.protonet_test_shift"),
    ("critics.protonet_test_shift=1.5", "critics.protonet_test_shift"),
])
def test_bad_values_name_their_field(override: str, field: str) -> None:
    with pytest.raises(ProfileError, match=field.replace(".", r"\.")):
        load_profile("tiny", overrides=[override])


def test_override_syntax() -> None:
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a.b=word") == ("a.b", "word")
    with pytest.raises(ProfileError, match="--set"):
        parse_override("no-equals-sign")


def test_unknown_profile() -> None:
    with pytest.raises(ProfileError, match="--profile"):
        load_profile("huge")


def test_cpu_profile_is_28_px_omniglot_with_the_literature_critic(tmp_path, monkeypatch) -> None:
    import logging

    import torch

    from experiments import stages

    p = load_profile("cpu", data_root=str(tmp_path))
    assert {m.data.size for m in p.models} == {28} and p.device == "cpu"
    assert all(m.data.dataset == "omniglot" for m in p.models)
    seen = {}

    def spy(images, labels, recipe, **kwargs):
        seen["recipe"], seen["class_names"] = recipe, kwargs.get("class_names")
        raise RuntimeError("stop after the recipe")

    monkeypatch.setattr(stages, "train_critic", spy)
    data = type("D", (), {"images": torch.zeros(2, 1, 4, 4), "labels": torch.tensor([0, 1]),
                          "class_names": ["Greek/character01", "Greek/character02"],
                          "content_hash": lambda self: "x", "size": 4, "__len__": lambda self: 2})()
    with pytest.raises(RuntimeError, match="stop"):
        stages.train_critics(p, data, tmp_path, 0, torch.device("cpu"), logging.getLogger("t"))
    c = p.section("critics")
    # the recipe of BENCHMARKS.md section critic: rotations, episodes from one alphabet, no affine
    # distortions, embeddings averaged over test-time shifts of up to 2 px
    assert seen["recipe"].rotations and not seen["recipe"].affine and seen["recipe"].test_shift == 2
    assert seen["recipe"].episodes == c["protonet_episodes"] and seen["recipe"].n_way == c["protonet_way"]
    assert seen["recipe"].within_alphabet == 1.0 and seen["class_names"] == data.class_names


def test_models_train_in_parallel_workers_on_a_cpu_and_are_reused(tmp_path) -> None:
    import logging

    import torch

    from experiments import stages
    from models.checkpoint import read_checkpoint

    p = load_profile("tiny", overrides=["models.set.training.steps=3", "models.set.training.log_every=1"])
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    log = logging.getLogger("train-models-test")
    log.addHandler(Collect())
    log.setLevel(logging.INFO)
    ckpts = stages.train_models(p, tmp_path, torch.device("cpu"), log, progress=False)
    assert set(ckpts) == {"ddpm", "cfgdm", "fsdm"}
    assert all(read_checkpoint(c)["meta"]["metrics"]["steps"] == 3 for c in ckpts.values())
    assert any(re.search(r"training 3 models in [23] processes of one thread each", r) for r in records)
    records.clear()
    assert stages.train_models(p, tmp_path, torch.device("cpu"), log, progress=False) == ckpts
    assert sum("reusing" in r for r in records) == 3 and not any("processes" in r for r in records)
