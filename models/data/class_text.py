"""Display texts of classes: what a participant is told a drawing shows.

Class ids (`digit4_rot270`, `Balinese/character01`, `full_simplified_the_eiffel_tower`) are
the data's keys; a person needs words. `class_text(dataset, class_label)` gives them for every
data set the loaders make; the sampler writes them into the manifest's `class_text` column
(docs/formats.md section 1).
"""

from __future__ import annotations

import re

from models.data.digits import TRANSFORM_TEXT

_DIGIT = re.compile(r"^digit(\d)(?:_([a-z0-9]+))?$")
_SPACES = re.compile(r"\s+")


def readable(name: str) -> str:
    """A folder or file name as words: underscores become spaces, runs of spaces one space."""
    return _SPACES.sub(" ", name.replace("_", " ")).strip()


def digit_text(class_label: str) -> str | None:
    """`digit4` -> "the digit 4"; `digit4_rot270` -> "the digit 4, rotated a quarter turn to
    the right"; None for a name the digits loader does not make."""
    m = _DIGIT.match(class_label)
    if m is None or (m.group(2) is not None and m.group(2) not in TRANSFORM_TEXT):
        return None
    how = TRANSFORM_TEXT.get(m.group(2) or "id", "")
    return f"the digit {m.group(1)}" + (f", {how}" if how else "")


def omniglot_text(class_label: str) -> str | None:
    """`Balinese/character01` -> "a character of the Balinese alphabet" (the character's number
    means nothing to a participant); `Alphabet_of_the_Magi/...` -> "a character of the Alphabet
    of the Magi"."""
    if "/" not in class_label:
        return None
    alphabet = readable(class_label.split("/")[0])
    if not alphabet:
        return None
    if alphabet.lower().startswith("alphabet"):
        return f"a character of the {alphabet}"
    return f"a character of the {alphabet} alphabet"


def class_text(dataset: str, class_label: str) -> str:
    """The display text of `class_label` in the data set the manifest names (`digits`,
    `digits10`, `omniglot`, `quickdraw`, `marks`, `folder:NAME`). QuickDraw categories and
    folder classes are their names made readable (nested folders joined by ", ")."""
    text: str | None = None
    if dataset in ("digits", "digits10"):
        text = digit_text(class_label)
    elif dataset == "omniglot":
        text = omniglot_text(class_label)
    elif dataset == "marks" and class_label.startswith("mark_"):
        text = f"a drawing with a small {readable(class_label[len('mark_'):])} mark"
    if text is None:
        text = ", ".join(p for p in (readable(part) for part in class_label.split("/")) if p)
    return text
