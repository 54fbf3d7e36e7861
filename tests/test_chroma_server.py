"""Server mode against a real `chroma run` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chroma_server import ChromaServer, free_port
from fakes import HashEmbedder

from tongcheng_qa.errors import StoreUnavailableError
from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.settings import ChromaSettings, Settings

pytestmark = pytest.mark.chroma_server


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path / "chroma-server", free_port())
    srv.start()
    yield srv
    srv.stop()


def _http_settings(tmp_path: Path, port: int) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        chroma=ChromaSettings(mode="http", host="127.0.0.1", port=port),
    )


def test_ingest_and_search_through_a_chroma_server(
    tmp_path: Path, corpus_dir: Path, chroma_server: ChromaServer
) -> None:
    settings = _http_settings(tmp_path, chroma_server.port)
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    report = kb.ingest(corpus_dir, progress=False)
    assert report.added == 3
    assert kb.index.vectors.ids() == set(kb.index.docstore.chunk_ids())
    assert not (tmp_path / "data" / "chroma").exists()  # nothing embedded locally

    # the vectors live in the server: a second client sees the same collection
    kb2 = KnowledgeBase(settings, embedder=HashEmbedder())
    assert kb2.index.vectors.count() == len(kb.index.docstore.chunk_ids())
    top = kb2.search("入驻企业有几家", k=3)
    assert top[0].article_id == "a.md" and top[0].dense_rank is not None

    # idempotent against the server too
    assert kb2.ingest(corpus_dir, progress=False).chunks_embedded == 0


def test_server_restart_keeps_vectors(tmp_path: Path, corpus_dir: Path, chroma_server: ChromaServer) -> None:
    settings = _http_settings(tmp_path, chroma_server.port)
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest(corpus_dir, progress=False)
    n = kb.index.vectors.count()
    chroma_server.stop()
    with pytest.raises(StoreUnavailableError, match="chroma run"):
        kb.index.vectors.count()
    chroma_server.start()
    assert KnowledgeBase(settings, embedder=HashEmbedder()).index.vectors.count() == n


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    settings = _http_settings(tmp_path, free_port())
    with pytest.raises(StoreUnavailableError) as info:
        KnowledgeBase(settings, embedder=HashEmbedder())
    msg = str(info.value)
    assert "unreachable" in msg and "chroma run" in msg and "TONGCHENG_QA_CHROMA__MODE=persistent" in msg
