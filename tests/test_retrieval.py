"""Hybrid retrieval logic: language-aware fusion weights, filters, modes (fast, hash embedder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import HashEmbedder

from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.lang import detect_language
from tongcheng_qa.settings import Settings
from tongcheng_qa.stores.base import SearchFilter


@pytest.fixture
def kb(settings: Settings, corpus_dir: Path) -> KnowledgeBase:
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest(corpus_dir, progress=False)
    return kb


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("金牛区和什邡市的股比是多少?", "zh"),
        ("What is the shareholding ratio?", "en"),
        ("How many companies are in the 金什合作产业园?", "en"),
        ("金什合作产业园有多少家企业 in total?", "zh"),
        ("2024", "zh"),
    ],
)
def test_language_detection_follows_the_main_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_chinese_question_gets_full_lexical_weight(kb: KnowledgeBase) -> None:
    snap = kb.index.snapshot()
    lq = kb.retriever.lexical_query("金牛区城投集团的股比是多少", "zh", snap)
    assert lq.weight > 0.6
    assert lq.expansions == ()


def test_english_question_without_known_terms_gets_no_lexical_weight(kb: KnowledgeBase) -> None:
    snap = kb.index.snapshot()
    lq = kb.retriever.lexical_query("What equity split did the two partners agree on?", "en", snap)
    assert lq.weight < 0.05


def test_glossary_expansion_makes_english_entities_visible_to_bm25(kb: KnowledgeBase) -> None:
    snap = kb.index.snapshot()
    q = "Which companies from Jinniu District and Shifang invested in the park?"
    lq = kb.retriever.lexical_query(q, "en", snap)
    assert any("金牛" in t for t in lq.expansions)
    assert any("什邡" in t for t in lq.expansions)
    assert lq.weight > 0.1
    kb.retriever.settings = kb.retriever.settings.model_copy(update={"glossary_expansion": False})
    assert kb.retriever.lexical_query(q, "en", snap).weight < lq.weight


def test_hybrid_results_are_ranked_by_fused_score_and_carry_both_ranks(kb: KnowledgeBase) -> None:
    passages = kb.search("入驻企业有几家", k=5)
    assert passages, "expected results"
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    top = passages[0]
    assert top.article_id == "a.md" and "入驻企业4家" in top.chunk.text
    assert top.lexical_rank == 1 and top.dense_rank is not None
    assert top.meta.title == "金牛区与什邡市共建产业园" and top.meta.date == "2024-01-19"


def test_modes_select_retrievers(kb: KnowledgeBase) -> None:
    dense = kb.retriever.search("入驻企业", k=5, mode="dense")
    assert all(p.lexical_rank is None for p in dense)
    lexical = kb.retriever.search("入驻企业", k=5, mode="lexical")
    assert lexical and all(p.dense_rank is None for p in lexical)


def test_date_filter_restricts_both_retrievers(kb: KnowledgeBase) -> None:
    hits = kb.search("产业 drone", k=10, flt=SearchFilter(date_from="2024-01-01"))
    assert hits and {p.article_id for p in hits} == {"a.md"}  # b.txt is undated, c.html is 2023
    hits = kb.search("drone base", k=10, flt=SearchFilter(date_to="2023-12-31"))
    assert {p.article_id for p in hits} == {"en/c.html"}


def test_article_filter(kb: KnowledgeBase) -> None:
    hits = kb.search("产业协作 企业", k=10, flt=SearchFilter(article_ids=("b.txt",)))
    assert hits and {p.article_id for p in hits} == {"b.txt"}


def test_empty_question_returns_nothing(kb: KnowledgeBase) -> None:
    assert kb.retriever.search("   ") == []
