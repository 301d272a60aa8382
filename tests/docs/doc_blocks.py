"""The shell blocks of README.md and docs/: where they are, how they are marked, their text.

A fenced block in a shell language (bash, sh, shell) must follow a marker line:
`<!-- runnable -->` (the docs test runs it on a fresh clone) or `<!-- not-run: REASON -->`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGUAGES = {"bash", "sh", "shell"}
MARKER = re.compile(r"^\s*<!--\s*(?:(?P<runnable>runnable)|not-run:(?P<reason>.*?))\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    marker: str | None  # "runnable", "not-run" or None
    reason: str
    code: str

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def doc_files(root: Path) -> list[Path]:
    """README.md, then the pages in the order of mkdocs.yml's nav, then any other page."""
    pages = [root / "docs" / name for name in nav_pages(root)]
    rest = sorted(p for p in (root / "docs").rglob("*.md") if p not in pages)
    return [root / "README.md", *pages, *rest]


def nav_pages(root: Path) -> list[str]:
    """The page files named in mkdocs.yml's nav, in order."""
    text = (root / "mkdocs.yml").read_text()
    nav = text[text.index("\nnav:"):]
    return re.findall(r"^\s+- [^\n]*?:\s*([\w./-]+\.md)\s*$", nav, re.M)


def blocks(path: Path) -> list[Block]:
    """Every fenced block of `path`, with the marker on the line before it (blank lines skipped)."""
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        indent, lang, start = opened["indent"], opened["lang"], i
        i += 1
        body = []
        while i < len(lines) and not re.match(rf"^{indent}```\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        mark = MARKER.match(lines[j]) if j >= 0 else None
        marker = None if mark is None else ("runnable" if mark["runnable"] else "not-run")
        reason = (mark["reason"] or "").strip() if mark else ""
        out.append(Block(path, start + 1, lang, marker, reason, textwrap.dedent("\n".join(body)) + "\n"))
    return out


def shell_blocks(root: Path) -> list[Block]:
    return [b for path in doc_files(root) for b in blocks(path) if b.lang in SHELL_LANGUAGES]


def markers_without_block(path: Path) -> list[int]:
    """Lines of markers that are not followed by a shell block."""
    lines = path.read_text().splitlines()
    marked = {b.line for b in blocks(path) if b.marker and b.lang in SHELL_LANGUAGES}
    bad = []
    for n, line in enumerate(lines, start=1):
        if MARKER.match(line):
            k = n
            while k < len(lines) and not lines[k].strip():
                k += 1
            if k + 1 not in marked:
                bad.append(n)
    return bad
