"""OpenAI-compatible Chat Completions: ``POST /v1/chat/completions`` and ``GET /v1/models``.

OpenAI clients work unchanged (the answer is the assistant message); citation-aware clients
read the extra ``citations`` and ``refused`` fields of the response, or of the last stream
chunk, which also carries the verified ``answer`` text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from ...assistant import MAX_HISTORY_TURNS
from ...conversation import Turn
from ...errors import BadRequestError, TongchengQAError
from ...generators.registry import ENGINES
from ..deps import ServicesDep, rate_limited
from ..errors import log
from ..schemas import ChatCompletionIn, ChatCompletionOut, ChatMessageIn, ModelListOut
from ..sse import SSE_HEADERS, sse
from .ask import ERRORS, started

router = APIRouter(tags=["openai-compatible"])
MODEL_NAME = "tongcheng-qa"


def _text(message: ChatMessageIn) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    return "".join(str(part.get("text", "")) for part in message.content if part.get("type") == "text")


def _conversation(messages: list[ChatMessageIn]) -> tuple[str, list[Turn]]:
    turns = [(m.role, _text(m)) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise BadRequestError("The last message must be the user's question (role 'user').")
    history = [Turn(role, content) for role, content in turns[:-1] if content.strip()]  # type: ignore[arg-type]
    return turns[-1][1], history[-MAX_HISTORY_TURNS:]  # clients resend the whole chat: keep its end


def _engine(model: str) -> str | None:
    return model if model in ENGINES else None  # any other model name: the server's default engine


@router.get("/v1/models", response_model=ModelListOut, summary="Models (answer engines) for OpenAI clients")
def list_models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_NAME}] + [{"id": name} for name in ENGINES]}


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionOut,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
    dependencies=[Depends(rate_limited)],
    summary="OpenAI-compatible chat completion, with citations",
)
def chat_completions(body: ChatCompletionIn, svc: ServicesDep) -> Any:
    question, history = _conversation(body.messages)
    engine = _engine(body.model)
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not body.stream:
        answer = svc.assistant.ask(question, history, engine=engine)
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": body.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer},
                         "finish_reason": "stop"}],
            "citations": [c for c in answer.to_dict()["citations"]],
            "refused": answer.refused,
        }

    events = started(svc.assistant.stream(question, history, engine=engine))  # errors before the status line

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse(None, {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body.model,
                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    def frames() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        try:
            for ev in events:
                if ev.type == "token":
                    yield chunk({"content": ev.text})
                elif ev.answer is not None:
                    out = ev.answer.to_dict()
                    yield chunk({}, "stop", citations=out["citations"], refused=out["refused"], answer=out["answer"])
        except TongchengQAError as exc:
            yield sse(None, {"error": {"message": str(exc), "type": "server_error"}})
        except Exception as exc:  # noqa: BLE001 - the status line is sent: report it in the stream
            log.error("chat stream failed: %s", type(exc).__name__, exc_info=exc)
            yield sse(None, {"error": {"message": "Internal error while answering; please retry.",
                                       "type": "server_error"}})
        yield sse(None, "[DONE]")

    return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)
