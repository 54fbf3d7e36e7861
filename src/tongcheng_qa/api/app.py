"""FastAPI application factory. Routes are thin; the KnowledgeBase does the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from ..errors import (
    BadRequestError,
    IndexNotReadyError,
    StoreUnavailableError,
    TongchengQAError,
)
from ..knowledge_base import KnowledgeBase
from ..settings import Settings
from ..stores.base import SearchFilter

WEB_DIR = Path(__file__).parent / "web"
_DATE = r"^\d{4}-\d{2}-\d{2}$"


class PassageOut(BaseModel):
    article_id: str
    chunk_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    score: float
    text: str
    start: int
    end: int


class ErrorOut(BaseModel):
    error: str = Field(description="What went wrong and how to fix it.")


def create_app(settings: Settings, kb: KnowledgeBase | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.kb = kb or KnowledgeBase(settings)
        _ = app.state.kb.embedder  # load the model once, at start-up
        yield

    app = FastAPI(title="tongcheng_qa", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(TongchengQAError)
    async def _domain_error(request: Request, exc: TongchengQAError) -> JSONResponse:
        status = 503 if isinstance(exc, (IndexNotReadyError, StoreUnavailableError)) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorOut}})
    def readyz(request: Request) -> dict[str, object]:
        kb_: KnowledgeBase = request.app.state.kb
        kb_.check_ready()
        return {"status": "ready", "articles": len(kb_.index.docstore.article_hashes()), "model": kb_.index.model_name}

    @app.get("/v1/search", responses={400: {"model": ErrorOut}, 503: {"model": ErrorOut}})
    def search(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=2000, description="The question")],
        k: Annotated[int, Query(ge=1, le=50)] = 5,
        date_from: Annotated[str | None, Query(pattern=_DATE)] = None,
        date_to: Annotated[str | None, Query(pattern=_DATE)] = None,
        article: Annotated[list[str] | None, Query()] = None,
    ) -> list[PassageOut]:
        if not q.strip():
            raise BadRequestError("The question is empty: pass some text in `q`.")
        flt = SearchFilter(date_from=date_from, date_to=date_to, article_ids=tuple(article) if article else None)
        passages = request.app.state.kb.search(q, k=k, flt=flt)
        return [
            PassageOut(
                article_id=p.article_id,
                chunk_id=p.chunk_id,
                title=p.meta.title,
                date=p.meta.date,
                source=p.meta.source,
                url=p.meta.url,
                score=p.score,
                text=p.chunk.text,
                start=p.chunk.start,
                end=p.chunk.end,
            )
            for p in passages
        ]

    @app.get("/", include_in_schema=False)
    def index_page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    return app
