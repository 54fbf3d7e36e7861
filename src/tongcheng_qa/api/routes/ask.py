"""Questions: ``POST /v1/ask``, ``POST /v1/ask/stream`` (SSE) and ``GET /v1/search``."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ...assistant import MAX_HISTORY_TURNS, StreamEvent
from ...conversation import Turn
from ...errors import BadRequestError, TongchengQAError
from ...stores.base import SearchFilter
from ...types import Answer
from ..deps import Services, ServicesDep, rate_limited
from ..errors import log
from ..schemas import AnswerOut, AskIn, ErrorOut
from ..sse import SSE_HEADERS, sse

router = APIRouter(tags=["questions"])
ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorOut} for c in (400, 404, 413, 422, 429, 503)
}


def _filter(body: AskIn) -> SearchFilter | None:
    if not (body.date_from or body.date_to or body.articles):
        return None
    if body.date_from and body.date_to and body.date_from > body.date_to:
        raise BadRequestError(f"date_from {body.date_from} is after date_to {body.date_to}.")
    return SearchFilter(date_from=body.date_from, date_to=body.date_to,
                        article_ids=tuple(body.articles) if body.articles else None)


def _history(svc: Services, body: AskIn) -> list[Turn]:
    if body.session_id and body.history:
        raise BadRequestError("Send either `history` or `session_id`, not both: a session keeps its own history.")
    if body.session_id:
        return svc.sessions.history(body.session_id, last=MAX_HISTORY_TURNS)
    return [Turn(t.role, t.content) for t in body.history or ()]


def started(events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    """Run a stream up to its first event before the status line is sent: retrieval happens
    there, so a vector store that is down is a 503 JSON error, not an error event after a 200."""
    first = next(events, None)
    return chain([first] if first is not None else [], events)


def _record(svc: Services, session_id: str | None, question: str, answer: Answer) -> dict[str, Any]:
    out = answer.to_dict()
    if session_id:
        svc.sessions.extend(session_id, [(Turn("user", question), None), (Turn("assistant", answer.answer), out)])
        out = {**out, "session_id": session_id}
    return out


@router.post("/v1/ask", response_model=AnswerOut, responses=ERRORS, dependencies=[Depends(rate_limited)],
             summary="Answer a question with verified citations")
def ask(body: AskIn, svc: ServicesDep) -> dict[str, Any]:
    """The Answer JSON of DESIGN.md. With ``session_id`` the session's history is used and the
    question and answer are added to it."""
    history = _history(svc, body)
    answer = svc.assistant.ask(body.question, history, engine=body.engine, top_k=body.top_k, flt=_filter(body))
    return _record(svc, body.session_id, body.question, answer)


@router.post(
    "/v1/ask/stream",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}},
                               "description": "`token` events ({text}), one `final` event (the Answer), `done`."}},
    dependencies=[Depends(rate_limited)],
    summary="Answer a question, streamed as Server-Sent Events",
)
def ask_stream(body: AskIn, svc: ServicesDep) -> StreamingResponse:
    """Events: ``token`` (``{"text": delta}``) as the answer is written, then ``final`` (the
    verified Answer JSON, whose ``answer`` text replaces the streamed one), then ``done``.
    A failure after the stream started is an ``error`` event (``{"error": message}``)."""
    history = _history(svc, body)
    events = started(svc.assistant.stream(body.question, history, engine=body.engine, top_k=body.top_k,
                                          flt=_filter(body)))  # bad input, store down: raise here, before any byte

    def frames() -> Iterator[str]:
        try:
            for ev in events:
                if ev.type == "token":
                    yield sse("token", {"text": ev.text})
                elif ev.answer is not None:
                    yield sse("final", _record(svc, body.session_id, body.question, ev.answer))
            yield sse("done", {})
        except TongchengQAError as exc:
            yield sse("error", {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the status line is sent: report it as an event
            log.error("stream failed: %s", type(exc).__name__, exc_info=exc)
            yield sse("error", {"error": "Internal error while answering; please retry."})

    return StreamingResponse(frames(), media_type="text/event-stream", headers=SSE_HEADERS)


_DATE = r"^\d{4}-\d{2}-\d{2}$"


@router.get("/v1/search", responses=ERRORS, summary="Ranked passages for a question (no answer)")
def search(
    svc: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="The question")],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    date_from: Annotated[str | None, Query(pattern=_DATE)] = None,
    date_to: Annotated[str | None, Query(pattern=_DATE)] = None,
    article: Annotated[list[str] | None, Query()] = None,
) -> list[dict[str, Any]]:
    if not q.strip():
        raise BadRequestError("The question is empty: pass some text in `q`.")
    flt = SearchFilter(date_from=date_from, date_to=date_to, article_ids=tuple(article) if article else None)
    return [
        {"article_id": p.article_id, "chunk_id": p.chunk_id, "title": p.meta.title, "date": p.meta.date,
         "source": p.meta.source, "url": p.meta.url, "score": p.score, "text": p.chunk.text,
         "start": p.chunk.start, "end": p.chunk.end}
        for p in svc.assistant.kb.search(q, k=k, flt=flt)
    ]
