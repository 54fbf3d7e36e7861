"""Wraps an LLM engine: on error or timeout the extractive engine answers instead."""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Iterator

from .base import Draft, GenerationRequest, Generator

log = logging.getLogger(__name__)


class FallbackGenerator:
    """``primary`` with a deadline; ``fallback`` (extractive) when it fails.

    The returned Draft's ``engine`` says which one answered. Streaming falls back only if
    the primary fails before its first token (``open_stream`` says which engine streams).
    """

    def __init__(self, primary: Generator, fallback: Generator, timeout_s: float) -> None:
        self.primary = primary
        self.fallback = fallback
        self.timeout_s = timeout_s
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="llm")

    @property
    def name(self) -> str:
        return self.primary.name

    def generate(self, request: GenerationRequest) -> Draft:
        future = self._pool.submit(self.primary.generate, request)
        try:
            draft = future.result(timeout=self.timeout_s)
            if not draft.text.strip():
                raise ValueError("empty answer")
            return Draft(draft.text, draft.refused, engine=self.primary.name)
        except Exception as exc:  # noqa: BLE001 - any LLM failure means: answer extractively
            future.cancel()
            log.warning("LLM engine failed (%s); answering extractively", type(exc).__name__)
            draft = self.fallback.generate(request)
            return Draft(draft.text, draft.refused, engine=self.fallback.name)

    def open_stream(self, request: GenerationRequest) -> tuple[str, Iterator[str]]:
        """(engine that streams, text deltas). Waits for the primary's first token."""
        it = iter(self.primary.stream(request))
        future = self._pool.submit(next, it, None)
        try:
            first = future.result(timeout=self.timeout_s)
            if first is None or not str(first).strip() and first == "":
                raise ValueError("empty stream")
        except Exception as exc:  # noqa: BLE001
            log.warning("LLM stream failed (%s); answering extractively", type(exc).__name__)
            return self.fallback.name, self.fallback.stream(request)

        def rest() -> Iterator[str]:
            yield first
            yield from it

        return self.primary.name, rest()

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        return self.open_stream(request)[1]
