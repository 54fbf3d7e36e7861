"""Cross-lingual retrieval with the real embedding model on the team's gold questions.

Passage level: a question is a hit@5 when one of its verbatim ``evidence`` strings lies in
one of the top-5 chunks (with a one-article corpus, article-level hit@5 would be trivial).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tongcheng_qa.evaluation.metrics import passage_hit_at_k
from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.settings import Settings

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    kb = KnowledgeBase(Settings(data_dir=tmp_path_factory.mktemp("quality") / "data"))
    kb.ingest(REPO / "corpus", progress=False)
    return kb


def _questions() -> list[dict]:
    rows = [json.loads(line) for line in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if r["type"] in ("factoid", "multi_hop") and r.get("evidence")]


def _hit_rate(kb: KnowledgeBase, lang: str, **retrieval: object) -> float:
    retriever = kb.retriever
    original = retriever.settings
    retriever.settings = original.model_copy(update=retrieval)
    try:
        qs = [q for q in _questions() if q["lang"] == lang]
        hits = 0
        for q in qs:
            top = retriever.search(q["question"], k=5)
            hits += passage_hit_at_k([p.chunk.text for p in top], q["evidence"], 5)
        return hits / len(qs)
    finally:
        retriever.settings = original


def test_hybrid_retrieval_meets_the_bar_in_both_languages(kb: KnowledgeBase) -> None:
    assert _hit_rate(kb, "zh") >= 0.95
    assert _hit_rate(kb, "en") >= 0.90


def test_glossary_expansion_is_what_lifts_english(kb: KnowledgeBase) -> None:
    with_glossary = _hit_rate(kb, "en")
    without = _hit_rate(kb, "en", glossary_expansion=False)
    assert with_glossary > without


def test_english_question_finds_the_chinese_sentence(kb: KnowledgeBase) -> None:
    top = kb.search("What is the shareholding ratio between Jinniu's urban investment group and Shifang's Hengxin company?", k=3)
    assert any("6∶4入股" in p.chunk.text for p in top)
