"""A scripted LangChain chat model for tests: replies (or exceptions) are queued with ``.enqueue()``."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedChatModel(BaseChatModel):
    """Returns the enqueued replies in order; an enqueued exception is raised instead.

    Every call is recorded in ``calls`` (the messages and the invocation kwargs). Calling
    it with nothing queued fails the test loudly.
    """

    script: list[Any] = Field(default_factory=list)
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def enqueue(self, *replies: str | BaseException) -> ScriptedChatModel:
        self.script.extend(replies)
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append({"messages": list(messages), "kwargs": dict(kwargs)})
        if not self.script:
            raise AssertionError("ScriptedChatModel was called but no reply is enqueued")
        reply = self.script.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])
