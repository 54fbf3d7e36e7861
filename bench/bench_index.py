"""Ingest throughput, query latency (real corpus and a synthetic >= 10k-chunk corpus), RSS.

    python bench/bench_index.py [--corpus corpus] [--synthetic-chunks 10000] [--queries 50]

* Ingest throughput: chunks/s of a full, real ingest (chunking + embedding + Chroma +
  BM25) of synthetic Chinese articles made from the corpus's own sentences
  (``--throughput-chunks`` of them).
* Query latency: ``HybridRetriever.search`` (query embedding + Chroma HNSW + BM25 + fusion)
  over the real corpus, then over a synthetic corpus of ``--synthetic-chunks`` chunks.
  To keep the bench short, the synthetic corpus's vectors are real embeddings of a sample
  of its chunks plus small noise (so they cluster like real ones) rather than 10k model
  calls; the query side is fully real.
* RSS: resident memory of this process (model + index loaded), like a server process.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tongcheng_qa.corpus import load_corpus
from tongcheng_qa.embeddings import Embedder
from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.settings import Settings

QUERIES = [
    "金什合作产业园目前入驻了几家企业?",
    "金牛区城投集团和什邡市恒新公司的股比是多少?",
    "成都都市圈有多少家企业实现跨市域产业协作?",
    "What is the operating revenue target of the drone project over ten years?",
    "Who is the deputy director of the Shifang Economic Development Zone?",
    "Which industrial chains are led by Deyang, Meishan and Ziyang?",
    "无人机项目年度经济贡献不低于多少?",
    "When did Jinniu District and Shifang sign the strategic cooperation agreement?",
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_articles(sentences: list[str], n_chunks_target: int, out: Path, seed: int = 7) -> None:
    """Write articles recombining real sentences, with numbers changed so texts differ."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    per_article = 12  # paragraphs; ~4-5 chunks an article at the default chunk size
    n_articles = max(1, -(-n_chunks_target // 4))  # ~4.3 chunks an article: at least the target
    for i in range(n_articles):
        paras = []
        for _ in range(per_article):
            s = rng.choice(sentences)
            s = re.sub(r"\d+", lambda m: str(rng.randint(1, 3000)), s)
            paras.append(s)
        date = f"20{rng.randint(18, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        body = "\n\n".join(paras)
        (out / f"syn-{i:05d}.md").write_text(f"---\ntitle: 合成文章{i}\ndate: {date}\n---\n\n{body}\n", encoding="utf-8")


class SampledEmbedder:
    """Real embedder for queries; passages get a real vector of a sampled text plus noise."""

    def __init__(self, real: Embedder, pool: np.ndarray, seed: int = 3) -> None:
        self._real, self._pool = real, pool
        self._rng = np.random.default_rng(seed)

    @property
    def name(self) -> str:
        return self._real.name

    @property
    def dim(self) -> int:
        return self._real.dim

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        idx = self._rng.integers(0, len(self._pool), size=len(texts))
        v = self._pool[idx] + self._rng.normal(0, 0.03, size=(len(texts), self._pool.shape[1])).astype(np.float32)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._real.embed_queries(texts)


def query_latency(kb: KnowledgeBase, n: int) -> tuple[float, float]:
    kb.search(QUERIES[0], k=5)  # warm-up (snapshot, lexical index load)
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        kb.search(QUERIES[i % len(QUERIES)], k=5)
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return statistics.median(lat), lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--synthetic-chunks", type=int, default=10_000)
    ap.add_argument("--throughput-chunks", type=int, default=400)
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()

    articles, _ = load_corpus(args.corpus)
    sentences = [s for a in articles for s in re.split(r"(?<=[。！？])", a.body) if len(s.strip()) > 15]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "real")
        t0 = time.perf_counter()
        kb = KnowledgeBase(settings)
        _ = kb.embedder
        print(f"model load: {time.perf_counter() - t0:.1f} s  ({settings.embedding.model}, {settings.embedding.backend})")

        # 1. ingest throughput on real embeddings
        synthetic_articles(sentences, args.throughput_chunks, root / "tp-corpus")
        tp = KnowledgeBase(Settings(data_dir=root / "tp"), embedder=kb.embedder)
        t0 = time.perf_counter()
        rep = tp.ingest(root / "tp-corpus", progress=False)
        dt = time.perf_counter() - t0
        lens = [len(s.chunk.text) for s in tp.index.docstore.all_chunks()]
        print(
            f"ingest: {rep.chunks_embedded} chunks (mean {statistics.mean(lens):.0f} chars) in {dt:.1f} s "
            f"= {rep.chunks_embedded / dt:.1f} chunks/s"
        )

        # 2. latency on the real corpus
        kb.ingest(args.corpus, progress=False)
        p50, p95 = query_latency(kb, args.queries)
        n_real = len(kb.index.docstore.chunk_ids())
        print(f"query latency @ {n_real} chunks (real corpus): p50 {p50:.1f} ms, p95 {p95:.1f} ms")

        # 3. latency at >= 10k chunks
        pool = kb.embedder.embed_passages([s.chunk.embedding_text() for s in tp.index.docstore.all_chunks()[:200]])
        big = KnowledgeBase(Settings(data_dir=root / "big"), embedder=SampledEmbedder(kb.embedder, pool))
        synthetic_articles(sentences, args.synthetic_chunks, root / "big-corpus", seed=11)
        t0 = time.perf_counter()
        big.ingest(root / "big-corpus", progress=True)
        n_big = len(big.index.docstore.chunk_ids())
        print(f"synthetic corpus: {n_big} chunks indexed in {time.perf_counter() - t0:.1f} s (vectors sampled)")
        p50, p95 = query_latency(big, args.queries)
        print(f"query latency @ {n_big} chunks: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        print(f"process RSS (model + {n_big}-chunk index loaded): {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
