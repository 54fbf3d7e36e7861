"""The corpus as the service sees it: list, read, add/replace, remove (admin) articles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from ...articles import ArticleDraft
from ..deps import ServicesDep, require_admin
from ..schemas import (
    ArticleDeletedOut,
    ArticleIn,
    ArticleListOut,
    ArticleOut,
    ArticlePutOut,
    ErrorOut,
)

router = APIRouter(tags=["articles"])
_ERR = {c: {"model": ErrorOut} for c in (400, 404, 422, 503)}
_ADMIN_ERR = {c: {"model": ErrorOut} for c in (400, 401, 403, 404, 413, 422, 503)}


@router.get("/v1/articles", response_model=ArticleListOut, responses=_ERR, summary="List (or find) articles")
def list_articles(
    svc: ServicesDep,
    q: Annotated[str | None, Query(max_length=200, description="Keyword in title, outlet or text")] = None,
) -> dict[str, Any]:
    return {"articles": [
        {"article_id": a.meta.article_id, "title": a.meta.title, "date": a.meta.date, "source": a.meta.source,
         "url": a.meta.url, "chunks": a.n_chunks}
        for a in svc.catalog.list(q)
    ]}


@router.get("/v1/articles/{article_id:path}", response_model=ArticleOut, responses=_ERR,
            summary="One article with its full text (citation offsets index into `body`)")
def get_article(article_id: str, svc: ServicesDep) -> dict[str, Any]:
    a = svc.catalog.get(article_id)
    return {"article_id": a.article_id, "title": a.title, "date": a.date, "source": a.source, "url": a.url,
            "chunks": svc.catalog.n_chunks(a.article_id), "body": a.body}


@router.post("/v1/articles", response_model=ArticlePutOut, responses={**_ADMIN_ERR, 201: {"model": ArticlePutOut}},
             dependencies=[Depends(require_admin)], summary="Add or replace an article (admin)")
def put_article(body: ArticleIn, response: Response, svc: ServicesDep) -> dict[str, Any]:
    """Written into the corpus folder as Markdown and indexed at once: 201 when added,
    200 when an article with that id was replaced (or was already identical)."""
    result = svc.catalog.put(ArticleDraft(title=body.title, body=body.body, date=body.date, source=body.source,
                                          url=body.url, article_id=body.article_id))
    response.status_code = 201 if result.status == "added" else 200
    return {"article_id": result.article_id, "status": result.status, "chunks": result.chunks}


@router.delete("/v1/articles/{article_id:path}", response_model=ArticleDeletedOut, responses=_ADMIN_ERR,
               dependencies=[Depends(require_admin)], summary="Remove an article (admin)")
def delete_article(article_id: str, svc: ServicesDep) -> dict[str, Any]:
    svc.catalog.delete(article_id)
    return {"article_id": article_id, "deleted": True}
