"""The synthetic marks data set: only the mark's box carries the class."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.data import load_dataset
from models.data.marks import PATTERNS, make_marks


def test_the_mark_sits_in_its_box_and_strokes_keep_clear():
    m = make_marks(30, 16, seed=4)
    imgs = m.data.images[:, 0].numpy() > 0
    side = 4
    for i in range(len(imgs)):
        box = m.masks[i]
        assert box.sum() == side * side
        r, c = np.argwhere(box).min(0)
        want = np.array([[ch == "1" for ch in row] for row in PATTERNS[m.data.class_names[int(m.data.labels[i])][5:]]])
        np.testing.assert_array_equal(imgs[i, r : r + side, c : c + side], want)
        ring = np.zeros_like(box)
        ring[max(0, r - 1) : r + side + 1, max(0, c - 1) : c + side + 1] = True
        assert not (imgs[i] & ring & ~box).any()  # a clear margin around the mark


def test_outside_the_box_the_images_carry_no_class():
    m = make_marks(400, 16, seed=5)
    ink = (m.data.images[:, 0].numpy() > 0) & ~m.masks
    per_class = np.stack([ink[m.data.labels.numpy() == k].mean() for k in range(4)])
    assert per_class.max() - per_class.min() < 0.01  # same ink density for every class
    counts = np.bincount(m.corners, minlength=4)
    assert counts.min() > 300  # the corner is drawn independently of the class


def test_deterministic_and_loadable_by_spec():
    a, b = make_marks(3, 16, seed=1), make_marks(3, 16, seed=1)
    torch.testing.assert_close(a.data.images, b.data.images)
    data = load_dataset("marks", size=16, max_per_class=5)
    assert len(data) == 20 and data.name == "marks" and data.class_names[0] == "mark_ring"


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="size"):
        make_marks(2, 18)
    with pytest.raises(ValueError, match="classes"):
        make_marks(2, 16, classes=("ring", "zigzag"))
