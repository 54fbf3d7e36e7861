"""FastAPI application factory: services built once at start-up, thin routers, one error map.

``create_app(settings)`` is what ``tongcheng-qa serve`` runs; ``app_from_env()`` is the
factory uvicorn's worker processes import (settings from ``TONGCHENG_QA_*``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from ..articles import ArticleCatalog
from ..assistant import Assistant
from ..conversation import SQLiteSessionStore
from ..knowledge_base import KnowledgeBase
from ..settings import Settings
from .deps import Services
from .errors import install_error_handlers
from .limits import BodySizeLimit, RateLimiter
from .routes import articles, ask, chat, health, sessions

WEB_DIR = Path(__file__).parent / "web"
log = logging.getLogger("tongcheng_qa.api")

#: The chat page loads only its own script and stylesheet: injected markup could not run.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def build_services(settings: Settings, kb: KnowledgeBase | None = None,
                   assistant: Assistant | None = None) -> Services:
    assistant = assistant or Assistant(settings, kb=kb)
    return Services(
        settings=settings,
        assistant=assistant,
        sessions=SQLiteSessionStore(settings.sessions_path),
        catalog=ArticleCatalog(assistant.kb, settings.corpus_dir),
        limiter=RateLimiter(settings.api.rate_limit_per_minute),
    )


def create_app(settings: Settings, kb: KnowledgeBase | None = None, assistant: Assistant | None = None) -> FastAPI:
    """The API and chat page. ``kb`` / ``assistant`` let tests and the CLI pass prepared ones."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = build_services(settings, kb, assistant)
        _ = svc.assistant.kb.embedder  # load the embedding model now, not on the first question
        app.state.services = svc
        yield

    app = FastAPI(
        title="tongcheng_qa",
        version="0.1.0",
        summary="Bilingual (中文/English) questions and answers with verified citations, over news about the "
                "Jinshi cooperative industrial park and Chengdu metropolitan integration.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (ask.router, chat.router, sessions.router, articles.router, health.router):
        app.include_router(router)
    if settings.api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers=PAGE_HEADERS)

    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory`` worker processes: everything from the environment."""
    return create_app(Settings())
