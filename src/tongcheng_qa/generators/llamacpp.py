"""LLM engine running a local GGUF in-process through llama-cpp-python (the ``llm`` extra)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError, ModelNotAvailableError
from ..prompts import SYSTEM, user_message
from ..settings import LLMSettings
from .base import Draft, GenerationRequest


class LlamaCppGenerator:
    name = "llm"

    def __init__(self, llama: Any, settings: LLMSettings) -> None:
        self._llama = llama
        self._settings = settings
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time

    def _messages(self, request: GenerationRequest) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": SYSTEM[request.lang]},
            {"role": "user", "content": user_message(request.question, request.lang, request.passages)},
        ]

    def _call(self, request: GenerationRequest, stream: bool) -> Any:
        return self._llama.create_chat_completion(
            messages=self._messages(request),
            temperature=self._settings.temperature,
            seed=self._settings.seed,
            max_tokens=self._settings.max_tokens,
            stream=stream,
        )

    def generate(self, request: GenerationRequest) -> Draft:
        with self._lock:
            out = self._call(request, stream=False)
        return Draft(text=str(out["choices"][0]["message"]["content"] or "").strip())

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        with self._lock:
            for chunk in self._call(request, stream=True):
                delta = chunk["choices"][0].get("delta", {}).get("content")
                if delta:
                    yield str(delta)


def llamacpp_generator(settings: LLMSettings) -> LlamaCppGenerator:
    if settings.gguf_path is None:
        raise ConfigError(
            "The `llamacpp` engine needs a GGUF file: set TONGCHENG_QA_LLM__GGUF_PATH to a .gguf "
            "(`tongcheng-qa models` lists the installed ones)."
        )
    if not settings.gguf_path.exists():
        raise ModelNotAvailableError(f"GGUF file not found: {settings.gguf_path}. Check TONGCHENG_QA_LLM__GGUF_PATH.")
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelNotAvailableError(
            "llama-cpp-python is not installed: run `pip install -e '.[llm]'` (it compiles, ~5 min on 2 cores)."
        ) from exc
    llama = Llama(
        model_path=str(settings.gguf_path),
        n_ctx=settings.n_ctx,
        n_batch=512,
        n_threads=settings.n_threads,
        seed=settings.seed,
        verbose=False,
    )
    return LlamaCppGenerator(llama, settings)
