"""The one-shot critic: a prototypical network (Snell et al. 2017) with the Conv-4 backbone
(conv3x3-64, BN, ReLU, max-pool x4), squared Euclidean distance to class prototypes, trained
episodically on the train classes and scored in N-way 1-shot tasks on held-out classes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from models.classifiers.backbones import Conv4Encoder
from models.classifiers.training import check_images, random_affine, rotation_classes

MAX_TEST_SHIFT = 4  # px: (2 * 4 + 1)^2 = 81 forward passes per drawing at most


class ProtoNet(nn.Module):
    """Embeds images (N, C, H, W) in [-1, 1] (background -1) to vectors (N, D); classification is
    by distance between `embed`dings. `test_shift` r > 0: `embed` averages over the image moved
    by whole pixels (test-time augmentation, see `embed`)."""

    def __init__(self, in_channels: int = 1, hidden: int = 64, test_shift: int = 0) -> None:
        super().__init__()
        if isinstance(test_shift, bool) or not isinstance(test_shift, int) or not 0 <= test_shift <= MAX_TEST_SHIFT:
            raise ValueError(f"test_shift: an integer number of pixels in [0, {MAX_TEST_SHIFT}], got {test_shift!r}")
        self.encoder = Conv4Encoder(in_channels, hidden)
        self.test_shift = test_shift
        self.arch = {"in_channels": in_channels, "hidden": hidden, "test_shift": test_shift}
        self.gradcam_layer_name = "encoder." + self.encoder.gradcam_layer_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding (N, D) that classification uses: `forward`'s, or with test_shift r its
        mean over the (2r + 1)^2 copies of each image moved by (dy, dx) in [-r, r]^2 pixels,
        background (-1) filling the edge. The max-pools make a Conv-4 embedding change when a
        stroke moves by a pixel; the mean holds the prototype still (BENCHMARKS.md, section
        critic)."""
        r = self.test_shift
        if r == 0:
            return self(x)
        h, w = x.shape[-2:]
        padded = F.pad(x, (r, r, r, r), value=-1.0)
        total = None
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                e = self(padded[..., dy : dy + h, dx : dx + w])
                total = e if total is None else total + e
        return total / (2 * r + 1) ** 2


def prototype_logits(
    support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, n_way: int
) -> torch.Tensor:
    """Logits (Q, n_way) = minus the squared L2 distance from each query embedding (Q, D) to each
    class prototype, the mean of that class's support embeddings (S, D), labels in 0..n_way-1."""
    protos = torch.zeros(n_way, support.shape[1], dtype=support.dtype, device=support.device)
    protos.index_add_(0, support_labels, support)
    counts = torch.bincount(support_labels, minlength=n_way).clamp(min=1).to(support.dtype)
    protos = protos / counts[:, None]
    return -torch.cdist(query, protos).pow(2)


def _episode(
    by_class: list[torch.Tensor], n_way: int, n_shot: int, n_query: int, gen: torch.Generator,
    classes: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample an episode: indices and episode labels of n_shot support + n_query queries per class,
    of n_way classes drawn from `classes` (positions in by_class; default: all of them)."""
    pool = torch.arange(len(by_class)) if classes is None else classes
    picked = pool[torch.randperm(len(pool), generator=gen)[:n_way]]
    s_idx, s_lab, q_idx, q_lab = [], [], [], []
    for j, c in enumerate(picked.tolist()):
        members = by_class[c]
        pick = members[torch.randperm(len(members), generator=gen)[: n_shot + n_query]]
        s_idx.append(pick[:n_shot])
        q_idx.append(pick[n_shot:])
        s_lab += [j] * n_shot
        q_lab += [j] * n_query
    return torch.cat(s_idx), torch.tensor(s_lab), torch.cat(q_idx), torch.tensor(q_lab)


def _group_pools(kept: list[int], groups: torch.Tensor | None, n_way: int) -> list[torch.Tensor]:
    """For within-group episodes: per group (e.g. an alphabet) with at least n_way usable classes,
    the positions in `kept` (the usable class labels) of its classes."""
    if groups is None:
        return []
    members: dict[int, list[int]] = {}
    for pos, label in enumerate(kept):
        members.setdefault(int(groups[label]), []).append(pos)
    return [torch.tensor(m) for _, m in sorted(members.items()) if len(m) >= n_way]


def train_protonet(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_way: int = 20,
    n_shot: int = 1,
    n_query: int = 5,
    episodes: int = 500,
    lr: float = 1e-3,
    hidden: int = 64,
    device: torch.device | str | None = None,
    seed: int = 0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    groups: torch.Tensor | None = None,
    within_group: float = 0.0,
    test_shift: int = 0,
    progress: bool = False,
) -> ProtoNet:
    """Train a ProtoNet episodically on the classes of (images (N, C, H, W), labels (N,)); only
    classes with at least n_shot + n_query images take part. Learning rate halves every quarter.

    `groups` (n_classes,) names a group per class label (e.g. its alphabet); a fraction
    `within_group` of the episodes then draws all its classes from one group (with at least n_way
    usable classes, picked in proportion to its size), as the within-alphabet test runs of Lake
    et al. (2015) do: harder negatives than classes from mixed alphabets. `test_shift`: the
    returned net's test-time shifts (ProtoNet.embed); training sees each image once."""
    from models.device import pick_device

    check_images(images, labels)
    device = pick_device(device)
    if not 0.0 <= within_group <= 1.0:
        raise ValueError(f"within_group: a fraction in [0, 1], got {within_group}")
    if within_group > 0 and (groups is None or len(groups) <= int(labels.max())):
        raise ValueError("groups: within_group > 0 needs a group for every class label")
    present = [int(c) for c in labels.unique()]
    by_class = [torch.nonzero(labels == c).flatten() for c in present]
    kept = [c for c, m in zip(present, by_class, strict=True) if len(m) >= n_shot + n_query]
    by_class = [m for m in by_class if len(m) >= n_shot + n_query]
    if len(by_class) < 2:
        raise ValueError(
            f"labels: need at least 2 classes with {n_shot + n_query} images each, got {len(by_class)}"
        )
    n_way = min(n_way, len(by_class))
    pools = _group_pools(kept, groups, n_way) if within_group > 0 else []
    if within_group > 0 and not pools:
        raise ValueError(f"groups: no group has {n_way} classes with {n_shot + n_query} images each")
    pool_sizes = torch.tensor([len(p) for p in pools], dtype=torch.float)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = ProtoNet(images.shape[1], hidden, test_shift).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, episodes // 4), gamma=0.5)
    bar = tqdm(range(episodes), desc="protonet", unit="episode", disable=not progress, dynamic_ncols=True)
    running = None
    for episode in bar:
        pool = None
        if pools and float(torch.rand((), generator=gen)) < within_group:
            pool = pools[int(torch.multinomial(pool_sizes, 1, generator=gen))]
        s_idx, s_lab, q_idx, q_lab = _episode(by_class, n_way, n_shot, n_query, gen, pool)
        x = images[torch.cat([s_idx, q_idx])]
        if augment is not None:
            x = augment(x, gen)
        emb = net(x.to(device))
        logits = prototype_logits(emb[: len(s_idx)], s_lab.to(device), emb[len(s_idx) :], n_way)
        loss = F.cross_entropy(logits, q_lab.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress:  # reading the loss waits for the device, so only when it is shown
            value = float(loss.detach())
            running = value if running is None else 0.98 * running + 0.02 * value
            if episode % 20 == 0:
                bar.set_postfix(loss=f"{running:.3f}", lr=f"{sched.get_last_lr()[0]:.1e}")
    return net.eval()


@dataclass(frozen=True)
class CriticRecipe:
    """How the one-shot critic is trained (the recipe `python -m benchmarks critic` measures on the
    20 Omniglot runs): rotations by 90 degrees as new classes and an independent random affine
    distortion of every episode image (models.classifiers.training.random_affine), as the
    one-shot literature trains on Omniglot (Vinyals et al. 2016; Koch et al. 2015)."""

    episodes: int = 3000
    n_way: int = 20
    n_query: int = 5
    rotations: bool = True
    affine: bool = True
    lr: float = 1e-3
    within_alphabet: float = 0.0  # fraction of episodes drawn from one alphabet (needs class names)
    test_shift: int = 0  # pixels of test-time shifts the critic's embedding averages over (ProtoNet.embed)


def alphabet_groups(class_names: list[str]) -> torch.Tensor:
    """(n_classes,) int64: one group per alphabet, the part of `Alphabet/character` before the
    slash (a name without one is its own alphabet), numbered in order of first appearance."""
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(name.split("/")[0], len(ids)) for name in class_names], dtype=torch.long)


def check_alphabets(class_names: list[str], n_way: int, data_name: str = "the data") -> None:
    """Within-alphabet episodes need an alphabet of n_way classes (of all the classes, when there
    are fewer): ValueError otherwise."""
    largest = int(alphabet_groups(class_names).bincount().max())
    if largest < min(n_way, len(class_names)):
        raise ValueError(f"no alphabet of {data_name} has {n_way} classes (largest {largest}); class names "
                         "need the form Alphabet/character")


def train_critic(
    images: torch.Tensor,
    labels: torch.Tensor,
    recipe: CriticRecipe = CriticRecipe(),
    *,
    class_names: list[str] | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> ProtoNet:
    """The one-shot critic: a ProtoNet trained on (images (N, 1, H, W), labels (N,)) by `recipe`.
    `class_names` (one per label, `Alphabet/character`) is needed for within-alphabet episodes;
    a rotated class belongs to the rotated alphabet (its own group)."""
    groups = None
    if recipe.within_alphabet > 0:
        if class_names is None or len(class_names) <= int(labels.max()):
            raise ValueError("class_names: within-alphabet episodes need a name for every class label")
        try:
            check_alphabets(class_names, recipe.n_way)
        except ValueError as exc:
            raise ValueError(f"within_alphabet: {exc}") from None
        groups = alphabet_groups(class_names)
    if recipe.rotations:
        n_classes = int(labels.max()) + 1
        images, labels = rotation_classes(images, labels)
        if groups is not None:
            n_groups = int(groups.max()) + 1
            groups = torch.cat([groups[:n_classes] + k * n_groups for k in range(4)])
    augment = random_affine if recipe.affine else None
    return train_protonet(images, labels, n_way=recipe.n_way, n_query=recipe.n_query, episodes=recipe.episodes,
                          lr=recipe.lr, device=device, seed=seed, augment=augment, groups=groups,
                          within_group=recipe.within_alphabet, test_shift=recipe.test_shift, progress=progress)


@torch.no_grad()
def classify(
    net: nn.Module,
    support: torch.Tensor,
    support_labels: torch.Tensor,
    query: torch.Tensor,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Class probabilities (Q, n_way) of queries (Q, C, H, W) given a support set (S, C, H, W)
    with labels (S,) in 0..n_way-1 (n_way = max label + 1)."""
    from models.device import pick_device

    check_images(support, support_labels)
    check_images(query)
    device = pick_device(device)
    net.to(device).eval()
    n_way = int(support_labels.max()) + 1
    embed = getattr(net, "embed", net)  # a ProtoNet's test-time embedding, else the forward pass
    logits = prototype_logits(
        embed(support.to(device)), support_labels.to(device), embed(query.to(device)), n_way
    )
    return logits.softmax(1).cpu()


@dataclass(frozen=True)
class OneShotTask:
    """An N-way 1-shot task: support[j] is the exemplar of choice j; query[k] belongs to answer[k]."""

    support: torch.Tensor
    query: torch.Tensor
    answer: torch.Tensor


def one_shot_tasks(
    images: torch.Tensor, labels: torch.Tensor, *, n_way: int = 20, n_tasks: int = 50, seed: int = 0
) -> list[OneShotTask]:
    """A fixed-seed list of N-way 1-shot tasks drawn from (images, labels): per task n_way classes,
    one support image and one different query image each (the within-task answer is j)."""
    check_images(images, labels)
    by_class = [torch.nonzero(labels == c).flatten() for c in labels.unique()]
    by_class = [m for m in by_class if len(m) >= 2]
    if len(by_class) < n_way:
        raise ValueError(f"n_way: {n_way} classes with 2+ images needed, found {len(by_class)}")
    gen = torch.Generator().manual_seed(seed)
    tasks = []
    for _ in range(n_tasks):
        s_idx, _s, q_idx, q_lab = _episode(by_class, n_way, 1, 1, gen)
        tasks.append(OneShotTask(images[s_idx], images[q_idx], q_lab))
    return tasks


def one_shot_accuracy(
    net: nn.Module, tasks: list[OneShotTask], *, device: torch.device | str | None = None
) -> float:
    """Mean accuracy over tasks of nearest-prototype classification of each query."""
    if not tasks:
        raise ValueError("tasks: empty task list")
    correct = total = 0
    for task in tasks:
        labels = torch.arange(len(task.support))
        pred = classify(net, task.support, labels, task.query, device=device).argmax(1)
        correct += int((pred == task.answer).sum())
        total += len(task.answer)
    return correct / total
