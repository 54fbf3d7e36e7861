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


def _extractive(index: Index, llm: LLMSettings) -> Generator:
    return ExtractiveGenerator(index)


def _openai(index: Index, llm: LLMSettings) -> Generator:
    from .openai_compat import openai_generator

    return FallbackGenerator(openai_generator(llm), ExtractiveGenerator(index), llm.timeout_s)


def _llamacpp(index: Index, llm: LLMSettings) -> Generator:
    from .llamacpp import llamacpp_generator

    return FallbackGenerator(llamacpp_generator(llm), ExtractiveGenerator(index), llm.timeout_s)


ENGINES: dict[str, Callable[[Index, LLMSettings], Generator]] = {
    "extractive": _extractive,
    "openai": _openai,
    "llamacpp": _llamacpp,
}


def build_generator(name: str, index: Index, llm: LLMSettings) -> Generator:
    try:
        factory = ENGINES[name]
    except KeyError:
        raise UnknownEngineError(name) from None
    return factory(index, llm)
