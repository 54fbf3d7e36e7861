"""LLM engine over any OpenAI-compatible endpoint, via LangChain's ChatOpenAI (an LCEL chain)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError
from ..prompts import SYSTEM, user_message
from ..settings import LLMSettings
from .base import Draft, GenerationRequest


def chat_model(settings: LLMSettings, *, streaming: bool = False) -> Any:
    """A deterministic ChatOpenAI client for the configured endpoint."""
    if not settings.base_url:
        raise ConfigError(
            "The `openai` engine needs an endpoint: set TONGCHENG_QA_LLM__BASE_URL "
            "(e.g. http://127.0.0.1:8080/v1) and TONGCHENG_QA_LLM__MODEL."
        )
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key,
        model=settings.model,
        temperature=settings.temperature,
        seed=settings.seed,
        max_tokens=settings.max_tokens,
        timeout=settings.timeout_s,
        max_retries=0,
        streaming=streaming,
    )


def _messages(request: GenerationRequest) -> list[tuple[str, str]]:
    return [
        ("system", SYSTEM[request.lang]),
        ("human", user_message(request.question, request.lang, request.passages)),
    ]


class ChatModelGenerator:
    """Prompt -> chat model -> text, as a LangChain runnable chain. Works with any BaseChatModel."""

    name = "llm"

    def __init__(self, model: Any, stream_model: Any | None = None) -> None:
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_core.runnables import RunnableLambda

        self.model = model
        to_messages = RunnableLambda(lambda req: ChatPromptTemplate.from_messages(_messages(req)).format_messages())
        self.chain = to_messages | model | StrOutputParser()
        self.stream_chain = to_messages | (stream_model or model) | StrOutputParser()

    def generate(self, request: GenerationRequest) -> Draft:
        return Draft(text=str(self.chain.invoke(request)).strip())

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        for piece in self.stream_chain.stream(request):
            if piece:
                yield str(piece)


def openai_generator(settings: LLMSettings) -> ChatModelGenerator:
    # Two clients: with streaming=True, llama.cpp's server answered ``invoke`` with an empty
    # aggregated message; with streaming=False, ``.stream()`` made one plain request.
    return ChatModelGenerator(chat_model(settings, streaming=False), chat_model(settings, streaming=True))
