"""A study's ending codes against the completion codes of its Prolific study, as a pure function.

Each ending the app can give (rules.ENDINGS) has a code here; Prolific's study object lists its
codes with a code_type. A code is right when Prolific has it with the ending's code_type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from study.participation.rules import ENDINGS, ending_code
from study.platforms.prolific import CompletionCode
from study.settings import StudySettings


@dataclass(frozen=True)
class CodeCheck:
    """One ending: its code here, the code_type Prolific must give it, and what is wrong (None:
    nothing)."""

    ending: str
    code_type: str
    code: str | None
    problem: str | None


def study_codes(settings: StudySettings, completion_code: str,
                screened_out_code: str | None) -> dict[str, str | None]:
    """ending -> the code the app gives for it (None: the study has none)."""
    return {e: ending_code(e, settings, completion_code, screened_out_code) for e in ENDINGS}


def check_codes(mine: dict[str, str | None], theirs: Iterable[CompletionCode]) -> list[CodeCheck]:
    """Each ending's code against Prolific's. A missing screen-out code is a problem only when
    Prolific defines a code of that type (the study then expects participants to bring it)."""
    by_code = {c.code: c for c in theirs}
    types = {c.code_type for c in by_code.values()}
    out = []
    for ending, code_type in ENDINGS.items():
        code = mine.get(ending)
        if code is None:
            problem = (f"Prolific has a {code_type} code, but this study gives none"
                       if code_type in types else None)
        elif code not in by_code:
            problem = f"Prolific's study has no code {code}"
        elif by_code[code].code_type != code_type:
            problem = f"Prolific's code {code} is of type {by_code[code].code_type}, not {code_type}"
        else:
            problem = None
        out.append(CodeCheck(ending, code_type, code, problem))
    return out
