"""The evaluation dataset: JSONL, one question a line (DESIGN.md, "Evaluation dataset").

:func:`load_dataset` validates the whole file before anything runs and raises one
:class:`DatasetError` that lists every malformed line with its number and what is wrong
with it. Blank lines are skipped. Keys beyond the contract are ignored, except the team's
optional ``evidence`` (a list of verbatim article strings for passage-level retrieval).

A question is *unanswerable* when its ``type`` is ``unanswerable`` or its ``answer`` is
``UNANSWERABLE`` (so an unanswerable follow-up can be written too); such a question must
have ``sources: []`` and ``must_include: []``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from ..conversation import Turn
from ..errors import TongchengQAError
from ..types import Lang

QuestionType = Literal["factoid", "multi_hop", "unanswerable", "followup"]

LANGS: tuple[Lang, ...] = ("zh", "en")
TYPES: tuple[QuestionType, ...] = ("factoid", "multi_hop", "unanswerable", "followup")
ROLES = ("user", "assistant")
UNANSWERABLE = "UNANSWERABLE"
REQUIRED_KEYS = ("id", "lang", "question", "answer", "must_include", "sources", "type")


class DatasetError(TongchengQAError):
    """The evaluation file has malformed lines; ``problems`` holds (line number, message)."""

    def __init__(self, path: Path, problems: Sequence[tuple[int, str]]) -> None:
        self.path = path
        self.problems = tuple(problems)
        lines = "\n".join(f"  line {n}: {msg}" for n, msg in self.problems)
        count = len({n for n, _ in self.problems})
        super().__init__(
            f"{path}: {count} malformed line{'s' if count != 1 else ''}; nothing was run. "
            f"Fix {'them' if count != 1 else 'it'} (format: DESIGN.md, \"Evaluation dataset\") "
            f"and run again:\n{lines}"
        )


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    lang: Lang
    question: str
    answer: str  # the reference answer, or UNANSWERABLE
    must_include: tuple[tuple[str, ...], ...]  # each item: its alternatives (one suffices)
    sources: tuple[str, ...]  # article ids that support the answer
    type: QuestionType
    history: tuple[Turn, ...] = ()
    evidence: tuple[str, ...] | None = None  # None: the line has no ``evidence`` key
    line: int = 0  # 1-based line number in the file

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable" and self.answer.strip() != UNANSWERABLE


# --------------------------------------------------------------------------- validation

def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _check_must_include(value: Any) -> list[str]:
    if not isinstance(value, list):
        return [f"'must_include' must be a list of strings or lists of strings, got {type(value).__name__}"]
    errors = []
    for i, item in enumerate(value):
        alts = item if isinstance(item, list) else [item]
        if not alts or not all(isinstance(a, str) and a.strip() for a in alts):
            errors.append(f"'must_include' item {i} must be a non-empty string or a non-empty list of them, got {item!r}")
    return errors


def _check_history(value: Any) -> list[str]:
    if not isinstance(value, list):
        return [f"'history' must be a list of {{\"role\", \"content\"}} objects, got {type(value).__name__}"]
    errors = []
    for i, turn in enumerate(value):
        if not isinstance(turn, dict):
            errors.append(f"'history' turn {i} must be an object, got {type(turn).__name__}")
            continue
        if turn.get("role") not in ROLES:
            errors.append(f"'history' turn {i}: 'role' must be 'user' or 'assistant', got {turn.get('role')!r}")
        if not isinstance(turn.get("content"), str):
            errors.append(f"'history' turn {i}: 'content' must be a string")
    return errors


def validate_record(record: Any) -> list[str]:
    """Everything wrong with one parsed line ([] when it is valid)."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    errors = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in record]
    for key in ("id", "question"):
        if key in record and not (isinstance(record[key], str) and record[key].strip()):
            errors.append(f"{key!r} must be a non-empty string, got {record[key]!r}")
    if "answer" in record and not isinstance(record["answer"], str):
        errors.append(f"'answer' must be a string, got {type(record['answer']).__name__}")
    if "lang" in record and record["lang"] not in LANGS:
        errors.append(f"'lang' must be one of {', '.join(LANGS)}, got {record['lang']!r}")
    if "type" in record and record["type"] not in TYPES:
        errors.append(f"'type' must be one of {', '.join(TYPES)}, got {record['type']!r}")
    if "must_include" in record:
        errors += _check_must_include(record["must_include"])
    if "sources" in record and not _is_str_list(record["sources"]):
        errors.append("'sources' must be a list of article ids (strings)")
    if "history" in record and record["history"] is not None:
        errors += _check_history(record["history"])
    if "evidence" in record and not (
        _is_str_list(record["evidence"]) and all(e for e in record["evidence"])
    ):
        errors.append("'evidence' must be a list of non-empty strings")
    if not errors and _unanswerable(record) and (record["sources"] or record["must_include"]):
        errors.append("an unanswerable question must have \"sources\": [] and \"must_include\": []")
    return errors


def _unanswerable(record: Mapping[str, Any]) -> bool:
    return bool(record["type"] == "unanswerable" or record["answer"].strip() == UNANSWERABLE)


def _to_question(record: Mapping[str, Any], line: int) -> EvalQuestion:
    evidence = record.get("evidence")
    return EvalQuestion(
        id=record["id"],
        lang=cast(Lang, record["lang"]),
        question=record["question"],
        answer=record["answer"],
        must_include=tuple(tuple(i) if isinstance(i, list) else (i,) for i in record["must_include"]),
        sources=tuple(record["sources"]),
        type=cast(QuestionType, record["type"]),
        history=tuple(Turn(t["role"], t["content"]) for t in record.get("history") or ()),
        evidence=tuple(evidence) if evidence is not None else None,
        line=line,
    )


def parse_dataset(text: str, path: Path) -> list[EvalQuestion]:
    """Questions from JSONL ``text``; raises :class:`DatasetError` listing every bad line."""
    problems: list[tuple[int, str]] = []
    questions: list[EvalQuestion] = []
    first_line_of: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append((n, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        errors = validate_record(record)
        qid = record.get("id") if isinstance(record, dict) else None
        if isinstance(qid, str) and qid.strip():
            if qid in first_line_of:
                errors.append(f"duplicate id {qid!r} (first used on line {first_line_of[qid]})")
            else:
                first_line_of[qid] = n
        if errors:
            problems += [(n, e) for e in errors]
            continue
        questions.append(_to_question(record, n))
    if problems:
        raise DatasetError(path, problems)
    if not questions:
        raise DatasetError(path, [(0, "the file holds no questions")])
    return questions


def load_dataset(path: Path) -> list[EvalQuestion]:
    """Read and validate a JSONL evaluation file (see the module docstring)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(Path(path), [(0, f"cannot be read as UTF-8 text: {exc}")]) from exc
    return parse_dataset(text, Path(path))
