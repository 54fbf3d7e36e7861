"""Conversations kept on the server: ``POST /v1/sessions``, ``GET /v1/sessions/{id}``."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path

from ..deps import ServicesDep
from ..schemas import ErrorOut, SessionCreatedOut, SessionOut

router = APIRouter(tags=["sessions"])


@router.post("/v1/sessions", status_code=201, response_model=SessionCreatedOut, responses={503: {"model": ErrorOut}},
             summary="Start a conversation")
def create_session(svc: ServicesDep) -> dict[str, Any]:
    """A new empty session. Send its ``session_id`` with questions to /v1/ask or /v1/ask/stream."""
    return {"session_id": svc.sessions.create(), "created_at": time.time()}


@router.get("/v1/sessions/{session_id}", response_model=SessionOut,
            responses={404: {"model": ErrorOut}, 503: {"model": ErrorOut}},
            summary="A conversation's history, with the citations of every answer")
def get_session(session_id: Annotated[str, Path(max_length=64)], svc: ServicesDep) -> dict[str, Any]:
    session = svc.sessions.get(session_id)
    return {
        "session_id": session.session_id,
        "created_at": session.created_at,
        "turns": [{"role": t.role, "content": t.content, "answer": t.answer, "created_at": t.created_at}
                  for t in session.turns],
    }
