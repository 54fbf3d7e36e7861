"""Answer-engine registry: plain factories by name, with an error listing the valid names."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import TongchengQAError
from ..index import Index
from ..settings import LLMSettings
from .base import Generator
from .extractive import ExtractiveGenerator
from .fallback import FallbackGenerator


class UnknownEngineError(TongchengQAError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown engine {name!r}. Valid engines: {', '.join(ENGINES)}.")
        self.name = name


def _extractive(llm: LLMSettings, extractive: ExtractiveGenerator) -> Generator:
    return extractive


def _openai(llm: LLMSettings, extractive: ExtractiveGenerator) -> Generator:
    from .openai_compat import openai_generator

    return FallbackGenerator(openai_generator(llm), extractive, llm.timeout_s)


def _llamacpp(llm: LLMSettings, extractive: ExtractiveGenerator) -> Generator:
    from .llamacpp import llamacpp_generator

    return FallbackGenerator(llamacpp_generator(llm), extractive, llm.timeout_s)


#: Engine name -> factory(llm settings, the extractive engine used as fallback).
ENGINES: dict[str, Callable[[LLMSettings, ExtractiveGenerator], Generator]] = {
    "extractive": _extractive,
    "openai": _openai,
    "llamacpp": _llamacpp,
}


def build_generator(
    name: str, index: Index, llm: LLMSettings, extractive: ExtractiveGenerator | None = None
) -> Generator:
    try:
        factory = ENGINES[name]
    except KeyError:
        raise UnknownEngineError(name) from None
    return factory(llm, extractive or ExtractiveGenerator(index))
