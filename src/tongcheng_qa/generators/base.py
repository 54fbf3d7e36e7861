"""The answer-engine seam: a Generator turns numbered passages into answer text with [n] markers.

Markers refer to the 1-based position of a passage in ``GenerationRequest.passages``; the
Assistant verifies and renumbers them (citations.py) whatever engine produced them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..types import Lang, Passage


@dataclass(frozen=True)
class GenerationRequest:
    question: str  # standalone (after follow-up rewriting)
    lang: Lang  # language to answer in
    passages: tuple[Passage, ...]  # numbered [1]..[n] in this order


@dataclass(frozen=True)
class Draft:
    """An engine's raw answer. ``refused`` when the engine itself found no supporting evidence."""

    text: str
    refused: bool = False
    engine: str | None = None  # set by wrappers when another engine answered (fallback)
    short_answer: str | None = None  # the answer span alone, verbatim from the first quote


@runtime_checkable
class Generator(Protocol):
    @property
    def name(self) -> str:
        """Registry name, reported as ``engine`` in the Answer."""
        ...

    def generate(self, request: GenerationRequest) -> Draft: ...

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Text deltas; their concatenation is the draft text."""
        ...
