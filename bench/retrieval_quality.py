"""Passage-level retrieval quality on the gold set, per language and retrieval mode.

A question is a hit@k when one of its ``evidence`` strings (verbatim article text) lies in
one of the top-k retrieved chunks. Follow-up and unanswerable questions are skipped (the
former need the follow-up rewriter, the latter have no evidence).

    python bench/retrieval_quality.py [--corpus corpus] [--questions eval/gold.jsonl] [--k 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tongcheng_qa.evaluation.metrics import passage_first_rank
from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.retrieval import HybridRetriever
from tongcheng_qa.settings import RetrievalSettings, Settings


def load_questions(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r.get("evidence") and r["type"] in ("factoid", "multi_hop")]


def evaluate(kb: KnowledgeBase, questions: list[dict], k: int, variants: dict[str, RetrievalSettings]) -> dict:
    out: dict[str, dict[str, float]] = {}
    for name, rs in variants.items():
        retriever = HybridRetriever(kb.index, kb.embedder, rs)
        stats: dict[str, list[float]] = {}
        lat: list[float] = []
        for q in questions:
            t0 = time.perf_counter()
            passages = retriever.search(q["question"], k=max(k, 10))
            lat.append((time.perf_counter() - t0) * 1000)
            r = passage_first_rank([p.chunk.text for p in passages], q["evidence"])
            for key in (q["lang"], "all"):
                stats.setdefault(f"{key}_hit", []).append(1.0 if r is not None and r <= k else 0.0)
                stats.setdefault(f"{key}_mrr", []).append(1.0 / r if r else 0.0)
        row = {key: sum(v) / len(v) for key, v in stats.items()}
        lat.sort()
        row["p50_ms"] = lat[len(lat) // 2]
        out[name] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--questions", type=Path, default=Path("eval/gold.jsonl"))
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    questions = load_questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        kb = KnowledgeBase(settings)
        kb.ingest(args.corpus, progress=False)
        base = settings.retrieval
        variants = {
            "hybrid": base,
            "hybrid-no-glossary": base.model_copy(update={"glossary_expansion": False}),
            "dense": base.model_copy(update={"mode": "dense"}),
            "bm25": base.model_copy(update={"mode": "lexical"}),
        }
        res = evaluate(kb, questions, args.k, variants)
    n_zh = sum(q["lang"] == "zh" for q in questions)
    print(f"questions: {len(questions)} (zh {n_zh}, en {len(questions) - n_zh}); passage-level, k={args.k}")
    print(f"{'mode':<20} {'zh hit':>7} {'en hit':>7} {'all hit':>8} {'zh mrr':>7} {'en mrr':>7} {'p50 ms':>7}")
    for name, r in res.items():
        print(
            f"{name:<20} {r['zh_hit']:7.3f} {r['en_hit']:7.3f} {r['all_hit']:8.3f} "
            f"{r['zh_mrr']:7.3f} {r['en_mrr']:7.3f} {r['p50_ms']:7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
