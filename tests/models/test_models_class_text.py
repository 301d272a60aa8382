"""Display texts of classes (models.data.class_text): words a participant understands."""

from __future__ import annotations

import re

import numpy as np
import pytest

from models.data.class_text import class_text, digit_text, omniglot_text, readable
from models.data.digits import TRANSFORM_TEXT, TRANSFORMS, load_digits


def test_every_digit_class_gets_its_own_text_without_ids():
    data = load_digits(8, augment=tuple(TRANSFORMS), max_per_class=1)
    texts = [class_text("digits", c) for c in data.class_names]
    assert len(set(texts)) == len(texts) == 50
    for name, text in zip(data.class_names, texts, strict=True):
        assert name not in text and "_" not in text and not re.search(r"rot\d|digit\d", text)
        assert text.startswith(f"the digit {name[5]}")
    assert class_text("digits", "digit4_rot270") == "the digit 4, rotated a quarter turn to the right"
    assert class_text("digits", "digit4_flip") == "the digit 4, mirrored left to right"
    assert class_text("digits10", "digit7") == "the digit 7"
    assert set(TRANSFORM_TEXT) == set(TRANSFORMS)


def test_transform_texts_say_what_the_transforms_do():
    # A mark in the top-right corner: a quarter turn to the left (anticlockwise) takes it to the
    # top-left, to the right (clockwise) to the bottom-right; mirroring to the top-left.
    a = np.zeros((3, 3))
    a[0, 2] = 1
    where = {t: tuple(int(v) for v in np.argwhere(f(a))[0]) for t, f in TRANSFORMS.items()}
    assert "to the left" in TRANSFORM_TEXT["rot90"] and where["rot90"] == (0, 0)
    assert "to the right" in TRANSFORM_TEXT["rot270"] and where["rot270"] == (2, 2)
    assert "upside down" in TRANSFORM_TEXT["rot180"] and where["rot180"] == (2, 0)
    assert "mirrored left to right" in TRANSFORM_TEXT["flip"] and where["flip"] == (0, 0)


@pytest.mark.parametrize(("label", "text"), [
    ("Balinese/character01", "a character of the Balinese alphabet"),
    ("Japanese_(katakana)/character13", "a character of the Japanese (katakana) alphabet"),
    ("Alphabet_of_the_Magi/character20", "a character of the Alphabet of the Magi"),
])
def test_omniglot_names_the_alphabet(label, text):
    assert class_text("omniglot", label) == text == omniglot_text(label)


def test_categories_and_folders_are_made_readable():
    assert class_text("quickdraw", "the eiffel tower") == "the eiffel tower"
    assert class_text("quickdraw", "hot_air_balloon") == "hot air balloon"
    assert class_text("folder:pets", "big_cats/tiger") == "big cats, tiger"
    assert class_text("marks", "mark_ring") == "a drawing with a small ring mark"
    assert readable("  a__b  c ") == "a b c"


def test_names_a_loader_does_not_make_fall_back_to_readable_words():
    assert digit_text("digit4_rot45") is None and digit_text("digits") is None
    assert class_text("digits", "digit4_rot45") == "digit4 rot45"
    assert omniglot_text("Balinese") is None
    assert class_text("omniglot", "Balinese") == "Balinese"
