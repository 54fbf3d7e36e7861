"""The minimal HTTP service: search, readiness, errors as JSON 4xx/503."""

from __future__ import annotations

from pathlib import Path

from fakes import HashEmbedder
from fastapi.testclient import TestClient

from tongcheng_qa.api import create_app
from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.settings import Settings


def test_search_returns_passages_whose_text_is_the_article_span(settings: Settings, corpus_dir: Path) -> None:
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest(corpus_dir, progress=False)
    with TestClient(create_app(settings, kb=kb)) as client:
        res = client.get("/v1/search", params={"q": "入驻企业有几家", "k": 2})
        assert res.status_code == 200
        rows = res.json()
        assert len(rows) == 2 and rows[0]["article_id"] == "a.md"
        body = kb.index.docstore.get_article("a.md").body
        assert body[rows[0]["start"] : rows[0]["end"]] == rows[0]["text"]
        assert rows[0]["title"] == "金牛区与什邡市共建产业园" and rows[0]["date"] == "2024-01-19"

        res = client.get("/v1/search", params={"q": "产业", "date_to": "2023-12-31"})
        assert {r["article_id"] for r in res.json()} <= {"en/c.html"}

        empty = client.get("/v1/search", params={"q": "   "})
        assert empty.status_code == 400 and "empty" in empty.json()["error"]
        bad = client.get("/v1/search", params={"q": "x", "date_from": "2024/01/01"})
        assert bad.status_code == 422
        assert client.get("/readyz").json()["articles"] == 3
        page = client.get("/")
        assert "/static/app.js" in page.text  # the chat page itself is tested in a browser: test_web_ui.py
        assert "script-src 'self'" in page.headers["content-security-policy"]  # no inline script can run


def test_readyz_is_503_with_the_fix_when_the_index_is_empty(settings: Settings) -> None:
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    with TestClient(create_app(settings, kb=kb)) as client:
        res = client.get("/readyz")
        assert res.status_code == 503 and "tongcheng-qa ingest" in res.json()["error"]
        assert client.get("/healthz").json() == {"status": "ok"}
