"""Ingestion: idempotence, updates, deletions, interruption, bad files (fast, hash embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FailingEmbedder, HashEmbedder

from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.settings import Settings


def _kb(settings: Settings, embedder: HashEmbedder | None = None) -> KnowledgeBase:
    return KnowledgeBase(settings, embedder=embedder or HashEmbedder())


def _live_state(kb: KnowledgeBase) -> tuple[set[str], set[str]]:
    return set(kb.index.docstore.chunk_ids()), kb.index.vectors.ids()


def test_first_ingest_indexes_every_article_with_exact_offsets(settings: Settings, corpus_dir: Path) -> None:
    kb = _kb(settings)
    report = kb.ingest(corpus_dir, progress=False)
    assert (report.articles, report.added, report.updated, report.removed, report.unchanged) == (3, 3, 0, 0, 0)
    assert report.errors == ()
    docs, vecs = _live_state(kb)
    assert report.chunks_embedded == len(docs) > 0
    assert docs == vecs
    ids = {s.meta.article_id for s in kb.index.docstore.list_articles()}
    assert ids == {"a.md", "b.txt", "en/c.html"}
    for sc in kb.index.docstore.all_chunks():
        body = kb.index.docstore.get_article(sc.chunk.article_id).body
        assert body[sc.chunk.start : sc.chunk.end] == sc.chunk.text


def test_reingest_of_unchanged_corpus_embeds_nothing(settings: Settings, corpus_dir: Path) -> None:
    emb = HashEmbedder()
    kb = _kb(settings, emb)
    kb.ingest(corpus_dir, progress=False)
    gen = kb.index.docstore.generation()
    embedded_before = emb.texts_embedded

    report = _kb(settings, emb).ingest(corpus_dir, progress=False)
    assert report.to_dict() == {
        "articles": 3,
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 3,
        "chunks_embedded": 0,
        "errors": [],
    }
    assert emb.texts_embedded == embedded_before
    assert kb.index.docstore.generation() == gen


def test_changed_article_replaces_its_chunks(settings: Settings, corpus_dir: Path) -> None:
    kb = _kb(settings)
    kb.ingest(corpus_dir, progress=False)
    old_b = set(kb.index.docstore.chunk_ids(["b.txt"]))
    old_a = set(kb.index.docstore.chunk_ids(["a.md"]))

    (corpus_dir / "b.txt").write_text("成都都市圈产业协作\n\n德阳市建成了全新的氢能产业园。\n", encoding="utf-8")
    report = kb.ingest(corpus_dir, progress=False)
    assert (report.updated, report.added, report.unchanged) == (1, 0, 2)
    new_b = set(kb.index.docstore.chunk_ids(["b.txt"]))
    assert new_b and not (new_b & old_b)
    assert set(kb.index.docstore.chunk_ids(["a.md"])) == old_a
    docs, vecs = _live_state(kb)
    assert docs == vecs  # old vectors of b.txt are gone
    assert report.chunks_embedded == len(new_b)
    top = kb.search("氢能产业园", k=1)[0]
    assert top.article_id == "b.txt" and "氢能" in top.chunk.text


def test_deleted_file_chunks_are_removed(settings: Settings, corpus_dir: Path) -> None:
    kb = _kb(settings)
    kb.ingest(corpus_dir, progress=False)
    (corpus_dir / "en" / "c.html").unlink()
    report = kb.ingest(corpus_dir, progress=False)
    assert (report.removed, report.articles) == (1, 2)
    docs, vecs = _live_state(kb)
    assert docs == vecs
    assert not any(cid.startswith("en/c.html") for cid in docs | vecs)
    assert kb.index.docstore.get_article("en/c.html") is None
    assert all(p.article_id != "en/c.html" for p in kb.search("drone base revenue", k=10))


def test_interrupted_ingest_leaves_previous_index_usable(
    settings: Settings, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tongcheng_qa.indexing._EMBED_BATCH", 1)  # several batches, so some vectors land
    kb = _kb(settings)
    kb.ingest(corpus_dir, progress=False)
    before_docs, _ = _live_state(kb)
    gen = kb.index.docstore.generation()
    old_hits = [p.chunk_id for p in kb.search("入驻企业", k=3)]

    (corpus_dir / "a.md").write_text(
        (corpus_dir / "a.md").read_text(encoding="utf-8") + "\n新增段落:园区新建了研发中心。\n", encoding="utf-8"
    )
    (corpus_dir / "d.txt").write_text("新文章\n\n资阳市发布口腔医疗器械产业规划。\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        _kb(settings, FailingEmbedder(fail_after=1)).ingest(corpus_dir, progress=False)

    fresh = _kb(settings)
    assert fresh.index.docstore.generation() == gen
    assert set(fresh.index.docstore.chunk_ids()) == before_docs
    assert [p.chunk_id for p in fresh.search("入驻企业", k=3)] == old_hits
    assert all(p.chunk_id in before_docs for p in fresh.search("口腔医疗器械", k=10))

    report = fresh.ingest(corpus_dir, progress=False)
    assert (report.added, report.updated) == (1, 1)
    docs, vecs = _live_state(fresh)
    assert docs == vecs  # vectors added by the interrupted run were reconciled
    assert fresh.search("口腔医疗器械", k=1)[0].article_id == "d.txt"


def test_bad_files_are_reported_and_the_rest_ingested(settings: Settings, corpus_dir: Path) -> None:
    (corpus_dir / "empty.md").write_text("", encoding="utf-8")
    (corpus_dir / "binary.txt").write_bytes(b"\x00\x01\x02\xff\xfe" * 100)
    (corpus_dir / "broken.md").write_text("---\ntitle: [unclosed\n---\n正文。\n", encoding="utf-8")
    report = _kb(settings).ingest(corpus_dir, progress=False)
    out = report.to_dict()
    json.dumps(out)  # serialisable
    assert report.added == 3
    assert sorted(Path(e["file"]).name for e in out["errors"]) == ["binary.txt", "broken.md", "empty.md"]
    assert all(e["error"] for e in out["errors"])


def test_file_that_breaks_keeps_its_indexed_version(settings: Settings, corpus_dir: Path) -> None:
    kb = _kb(settings)
    kb.ingest(corpus_dir, progress=False)
    before = set(kb.index.docstore.chunk_ids(["b.txt"]))
    (corpus_dir / "b.txt").write_bytes(b"\x00\xff" * 50)
    report = kb.ingest(corpus_dir, progress=False)
    assert report.removed == 0 and len(report.errors) == 1
    assert set(kb.index.docstore.chunk_ids(["b.txt"])) == before


def test_new_embedding_model_reembeds_unchanged_articles(settings: Settings, corpus_dir: Path) -> None:
    _kb(settings, HashEmbedder(name="test/model-one")).ingest(corpus_dir, progress=False)
    kb2 = _kb(settings, HashEmbedder(name="test/model-two"))
    report = kb2.ingest(corpus_dir, progress=False)
    assert report.unchanged == 3
    assert report.chunks_embedded == len(kb2.index.docstore.chunk_ids()) > 0
    assert kb2.index.vectors.ids() == set(kb2.index.docstore.chunk_ids())


def test_search_before_ingest_names_the_fix(settings: Settings) -> None:
    from tongcheng_qa.errors import IndexNotReadyError

    with pytest.raises(IndexNotReadyError, match="tongcheng-qa ingest"):
        _kb(settings).search("金牛区")


def test_missing_corpus_folder_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    from tongcheng_qa.errors import CorpusError

    with pytest.raises(CorpusError, match="nope"):
        _kb(settings).ingest(tmp_path / "nope", progress=False)
