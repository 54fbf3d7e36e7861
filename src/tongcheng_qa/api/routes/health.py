"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (it can answer)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import APIRouter

from ...settings import LLMSettings
from ..deps import ServicesDep
from ..schemas import ErrorOut, ReadyOut

router = APIRouter(tags=["health"])
LLM_PROBE_TIMEOUT_S = 2.0
#: Identifies this process in /readyz (random, not the pid): each uvicorn worker imports this anew.
INSTANCE = uuid.uuid4().hex[:12]


def llm_status(llm: LLMSettings) -> dict[str, Any]:
    """Is the configured LLM usable? Probes ``GET {base_url}/models`` (2 s), or checks the GGUF file."""
    if llm.base_url:
        url = llm.base_url.rstrip("/") + "/models"
        try:
            res = httpx.get(url, timeout=LLM_PROBE_TIMEOUT_S,
                            headers={"Authorization": f"Bearer {llm.api_key.get_secret_value()}"})
        except httpx.HTTPError as exc:
            return {"configured": True, "reachable": False, "base_url": llm.base_url,
                    "error": f"{type(exc).__name__}: cannot reach {url}; answers fall back to the extractive engine"}
        if res.status_code >= 400:
            return {"configured": True, "reachable": False, "base_url": llm.base_url,
                    "error": f"{url} answered HTTP {res.status_code}; answers fall back to the extractive engine"}
        try:
            models = res.json()
        except ValueError:
            models = None
        if not isinstance(models, dict) or not isinstance(models.get("data"), list):
            return {"configured": True, "reachable": False, "base_url": llm.base_url,
                    "error": f"{url} did not answer like an OpenAI-compatible server (no model list); "
                             "answers fall back to the extractive engine"}
        return {"configured": True, "reachable": True, "base_url": llm.base_url}
    if llm.gguf_path:
        ok = llm.gguf_path.is_file()
        return {"configured": True, "reachable": ok, "base_url": None,
                "error": None if ok else f"GGUF file {llm.gguf_path} not found"}
    return {"configured": False, "reachable": None}


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ErrorOut}},
            summary="Readiness: index and model loaded; LLM reachable or not")
def readyz(svc: ServicesDep) -> dict[str, Any]:
    kb = svc.assistant.kb
    kb.check_ready()  # 503 with the fix when the index is empty or built with another model
    return {
        "status": "ready",
        "instance": INSTANCE,
        "articles": len(kb.index.docstore.article_hashes()),
        "chunks": len(kb.index.snapshot().chunks),
        "vectors": kb.index.vectors.count(),  # 503 with a clear message when a Chroma server is down
        "model": kb.index.model_name,
        "default_engine": svc.settings.answer.engine,
        "llm": llm_status(svc.settings.llm),
    }
