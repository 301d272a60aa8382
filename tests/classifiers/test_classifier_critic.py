"""The one-shot critic (prototypical network): distances, episodes, held-out one-shot accuracy
on the embedded digits and on the 20 Omniglot one-shot runs."""

from __future__ import annotations

import pytest
import torch

from models.classifiers import protonet
from models.classifiers.omniglot_runs import HUMAN_ERROR, load_one_shot_runs
from models.classifiers.protonet import (
    ProtoNet,
    classify,
    one_shot_accuracy,
    one_shot_tasks,
    prototype_logits,
    train_protonet,
)
from models.classifiers.training import random_affine, rotation_classes
from models.data import load_dataset, one_shot_split


def test_prototype_logits_are_minus_squared_distances_to_class_means():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    labels = torch.tensor([0, 0, 1])
    query = torch.tensor([[1.0, 1.0]])
    # prototypes (1, 0) and (0, 4): squared distances 1 and 1 + 9 = 10
    torch.testing.assert_close(prototype_logits(support, labels, query, 2), torch.tensor([[-1.0, -10.0]]))


def test_classify_returns_probabilities_over_the_support_classes():
    net = ProtoNet()
    support, query = torch.randn(5, 1, 8, 8), torch.randn(3, 1, 8, 8)
    probs = classify(net, support, torch.arange(5), query, device="cpu")
    assert probs.shape == (3, 5)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))


def test_test_time_shifts_average_the_embedding_over_moved_copies():
    """embed with test_shift r is the mean of the forward pass over the image moved by every
    (dy, dx) in [-r, r]^2 (here the drawing has a blank border of r px, so torch.roll moves it the
    same way as the padded shift does); r = 0 is the forward pass; classify uses embed."""
    torch.manual_seed(0)
    x = -torch.ones(3, 1, 12, 12)
    x[:, :, 3:9, 3:9] = torch.randn(3, 1, 6, 6).sign()
    plain = ProtoNet().eval()
    shifted = ProtoNet(test_shift=2).eval()
    shifted.load_state_dict(plain.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(plain.embed(x), plain(x))
        reference = torch.stack([plain(torch.roll(x, (dy, dx), (2, 3)))
                                 for dy in range(-2, 3) for dx in range(-2, 3)]).mean(0)
        torch.testing.assert_close(shifted.embed(x), reference)
        assert not torch.allclose(shifted.embed(x), plain(x))
        expected = prototype_logits(reference[:2], torch.arange(2), reference[2:], 2).softmax(1)
    torch.testing.assert_close(classify(shifted, x[:2], torch.arange(2), x[2:], device="cpu"), expected)
    assert shifted.arch["test_shift"] == 2
    for bad in (-1, 5, 1.5, True):
        with pytest.raises(ValueError, match="test_shift"):
            ProtoNet(test_shift=bad)


def test_one_shot_tasks_are_seeded_and_well_formed():
    images = torch.arange(60, dtype=torch.float32).view(60, 1, 1, 1).expand(60, 1, 8, 8).contiguous()
    labels = torch.arange(60) % 10
    a = one_shot_tasks(images, labels, n_way=5, n_tasks=3, seed=4)
    b = one_shot_tasks(images, labels, n_way=5, n_tasks=3, seed=4)
    for ta, tb in zip(a, b, strict=True):
        assert torch.equal(ta.support, tb.support) and torch.equal(ta.answer, torch.arange(5))
        s_cls = ta.support[:, 0, 0, 0].long() % 10
        q_cls = ta.query[:, 0, 0, 0].long() % 10
        assert torch.equal(s_cls, q_cls) and len(set(s_cls.tolist())) == 5
        assert not torch.equal(ta.support, ta.query)  # a different drawing of the same class
    with pytest.raises(ValueError, match="n_way"):
        one_shot_tasks(images, labels, n_way=11)


@pytest.mark.slow
def test_critic_beats_chance_widely_on_held_out_digit_classes():
    data = load_dataset("digits", size=8, threshold=None)  # 40 classes (digits x rotations/flip)
    train, held, _record = one_shot_split(data, 15, seed=0)
    net = train_protonet(train.images, train.labels, n_way=15, n_query=5, episodes=120, device="cpu")
    tasks = one_shot_tasks(held.images, held.labels, n_way=5, n_tasks=60, seed=1)
    accuracy = one_shot_accuracy(net, tasks, device="cpu")
    assert accuracy > 0.5  # chance 0.2


def test_alphabet_groups_number_alphabets_in_order_of_appearance():
    names = ["Greek/character01", "Greek/character02", "Latin/character01", "loose", "Greek/character03"]
    assert protonet.alphabet_groups(names).tolist() == [0, 0, 1, 2, 0]


def test_within_group_episodes_draw_every_class_from_one_group():
    gen = torch.Generator().manual_seed(0)
    by_class = [torch.arange(3 * c, 3 * c + 3) for c in range(12)]  # 12 classes, 3 images each
    groups = torch.tensor([0] * 5 + [1] * 4 + [2] * 3)
    kept = list(range(12))
    pools = protonet._group_pools(kept, groups, n_way=4)
    assert [p.tolist() for p in pools] == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]  # group 2 is too small
    for _ in range(20):
        pool = pools[int(torch.randint(2, (), generator=gen))]
        s_idx, s_lab, q_idx, _ = protonet._episode(by_class, 4, 1, 2, gen, pool)
        classes = {int(i) // 3 for i in torch.cat([s_idx, q_idx])}
        assert len(classes) == 4 and len({int(groups[c]) for c in classes}) == 1
        assert s_lab.tolist() == [0, 1, 2, 3]


def test_within_group_training_refuses_what_it_cannot_use():
    images, labels = torch.randn(24, 1, 8, 8), torch.arange(24) % 4
    with pytest.raises(ValueError, match="within_group"):
        train_protonet(images, labels, n_way=2, n_query=2, episodes=1, within_group=1.5)
    with pytest.raises(ValueError, match="groups"):
        train_protonet(images, labels, n_way=2, n_query=2, episodes=1, within_group=0.5)
    with pytest.raises(ValueError, match="no group has 3 classes"):
        train_protonet(images, labels, n_way=3, n_query=2, episodes=1, within_group=0.5,
                       groups=torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="class_names"):
        protonet.train_critic(images, labels, protonet.CriticRecipe(episodes=1, within_alphabet=0.5))
    with pytest.raises(ValueError, match=r"^within_alphabet: no alphabet of the data has 3 classes \(largest 2\)"):
        protonet.train_critic(images, labels, protonet.CriticRecipe(episodes=1, n_way=3, within_alphabet=0.5),
                              class_names=["A/1", "A/2", "B/1", "B/2"])
    net = protonet.train_critic(images, labels, protonet.CriticRecipe(episodes=2, n_way=2, n_query=2,
                                                                      within_alphabet=0.5, affine=False),
                                class_names=["A/1", "A/2", "B/1", "B/2"], device="cpu")
    assert isinstance(net, ProtoNet)


def test_rotation_classes_quadruple_the_classes():
    images, labels = torch.randn(6, 1, 4, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    x, y = rotation_classes(images, labels)
    assert x.shape == (24, 1, 4, 4) and sorted(set(y.tolist())) == list(range(12))
    torch.testing.assert_close(x[6], torch.rot90(images[0], 1, dims=(1, 2)))


def test_omniglot_runs_match_their_answer_keys(omniglot_dir):
    runs = load_one_shot_runs(omniglot_dir / "all_runs.zip", size=28)
    assert len(runs) == 20
    for run in runs:
        assert run.support.shape == run.query.shape == (20, 1, 28, 28)
        assert sorted(run.answer.tolist()) == list(range(20))  # every class is queried once
        assert set(run.support.unique().tolist()) <= {-1.0, 1.0}


@pytest.mark.slow
def test_critic_on_the_twenty_omniglot_one_shot_runs(omniglot_dir):
    """Short training on the minimal background splits; the longer run's error is in
    BENCHMARKS.md next to the 4.5% published for people."""
    data = load_dataset("omniglot", omniglot_dir, size=28)
    images, labels = rotation_classes(data.images, data.labels)
    net = train_protonet(images, labels, n_way=20, n_query=3, episodes=40, device="cpu")
    error = 1.0 - one_shot_accuracy(net, load_one_shot_runs(omniglot_dir / "all_runs.zip", 28), device="cpu")
    print(f"one-shot error on the 20 runs: {error:.3f} (people: {HUMAN_ERROR:.3f})")
    assert error < 0.8  # chance error: 0.95


def test_random_affine_with_zero_ranges_is_the_identity_and_stays_in_range():
    x = torch.where(torch.rand(5, 1, 12, 12, generator=torch.Generator().manual_seed(0)) > 0.7, 1.0, -1.0)
    same = random_affine(x, torch.Generator().manual_seed(1), rotate_deg=0, scale=0, shift=0, shear=0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    moved = random_affine(x, torch.Generator().manual_seed(1))
    assert float(moved.min()) >= -1.0 - 1e-6 and float(moved.max()) <= 1.0 + 1e-6
    assert float((moved - x).abs().mean()) > 0.05  # every image is distorted


def test_random_affine_shift_moves_ink_by_the_drawn_amount():
    x = -torch.ones(1, 1, 20, 20)
    x[..., 8:12, 8:12] = 1.0
    gen = torch.Generator().manual_seed(3)
    u = torch.rand(1, 5, generator=torch.Generator().manual_seed(3)) * 2 - 1
    out = random_affine(x, gen, rotate_deg=0, scale=0, shift=0.2, shear=0)
    ink = (out[0, 0] + 1) / 2
    cols = (ink.sum(0) * torch.arange(20.0)).sum() / ink.sum()
    # affine_grid samples the input at x_out + shift (normalised units), so ink moves by -shift * 10 px
    assert float(cols) == pytest.approx(9.5 - float(u[0, 2]) * 0.2 * 10, abs=0.3)


def test_train_critic_follows_its_recipe(monkeypatch):
    import models.classifiers.protonet as protonet

    seen = {}

    def spy(images, labels, **kwargs):
        seen.update(n_classes=len(labels.unique()), **kwargs)
        return ProtoNet()

    monkeypatch.setattr(protonet, "train_protonet", spy)
    images, labels = torch.randn(12, 1, 8, 8), torch.arange(3).repeat_interleave(4)
    protonet.train_critic(images, labels, protonet.CriticRecipe(episodes=7, n_way=3))
    assert seen["n_classes"] == 12 and seen["episodes"] == 7 and seen["augment"] is random_affine
    protonet.train_critic(images, labels, protonet.CriticRecipe(rotations=False, affine=False, test_shift=2))
    assert seen["n_classes"] == 3 and seen["augment"] is None and seen["test_shift"] == 2
