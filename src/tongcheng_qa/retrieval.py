"""Language-aware hybrid retrieval: dense (e5) + BM25 (jieba), fused by weighted RRF.

The weight of the lexical list is what the lexical retriever can actually see of the query:
the IDF-weighted share of the query's tokens that occur in the index (``coverage``). A
Chinese question over Chinese news gets a lexical weight near 1; an English question over
Chinese news gets one near 0 — unless the glossary expanded its entities ("Jinniu District"
-> 金牛区), in which case the Chinese terms it contributed are visible and count. This keeps
useless BM25 hits from dragging English questions down, while still letting exact names and
numbers help when they match.
"""

from __future__ import annotations

from dataclasses import dataclass

from .embeddings import Embedder
from .index import Index, Snapshot
from .lang import detect_language
from .settings import RetrievalSettings
from .stores.base import SearchFilter
from .types import Lang, Passage


@dataclass(frozen=True)
class LexicalQuery:
    tokens: tuple[str, ...]
    expansions: tuple[str, ...]  # Chinese glossary terms added for an English question
    weight: float


class HybridRetriever:
    def __init__(self, index: Index, embedder: Embedder, settings: RetrievalSettings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def lexical_query(self, query: str, lang: Lang, snap: Snapshot) -> LexicalQuery:
        tok = self.index.tokenizer
        tokens = tok.tokenize(query)
        expansions: list[str] = []
        if lang == "en" and self.settings.glossary_expansion:
            for entry in self.index.glossary.expand_english(query):
                expansions.append(entry.zh)
        for term in expansions:
            tokens.extend(tok.tokenize(term))
        # Coverage is measured on the question's own content words plus the expansions.
        weight = snap.lexical.coverage(tokens)
        return LexicalQuery(tuple(tokens), tuple(expansions), weight)

    def search(
        self,
        query: str,
        k: int | None = None,
        flt: SearchFilter | None = None,
        mode: str | None = None,
    ) -> list[Passage]:
        k = k or self.settings.top_k
        mode = mode or self.settings.mode
        snap = self.index.snapshot()
        if not snap.chunks or not query.strip():
            return []
        cand = max(self.settings.candidates, k)
        lang = detect_language(query)

        dense: list[tuple[str, float]] = []
        if mode in ("hybrid", "dense"):
            qvec = self.embedder.embed_queries([query])[0]
            # Over-fetch a little: ids of a crashed ingest may still sit in the store.
            hits = self.index.vectors.query(qvec, min(cand + 8, len(snap.chunks) + 8), flt)
            dense = [(h.chunk_id, h.score) for h in hits if h.chunk_id in snap.by_id][:cand]

        lexical: list[tuple[str, float]] = []
        lex_weight = 1.0 if mode == "lexical" else 0.0
        if mode in ("hybrid", "lexical"):
            lq = self.lexical_query(query, lang, snap)
            if mode == "hybrid":
                lex_weight = lq.weight
            if lex_weight > 0:
                lhits = snap.lexical.search(lq.tokens, cand, snap.mask(flt))
                lexical = [(snap.lexical.chunk_ids[h.position], h.score) for h in lhits]

        return self._fuse(snap, dense, lexical, lex_weight)[:k]

    def _fuse(
        self,
        snap: Snapshot,
        dense: list[tuple[str, float]],
        lexical: list[tuple[str, float]],
        lex_weight: float,
    ) -> list[Passage]:
        rrf_k = self.settings.rrf_k
        fused: dict[str, float] = {}
        d_rank = {cid: r for r, (cid, _) in enumerate(dense, 1)}
        d_score = dict(dense)
        l_rank = {cid: r for r, (cid, _) in enumerate(lexical, 1)}
        l_score = dict(lexical)
        for cid, r in d_rank.items():
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (rrf_k + r)
        if lex_weight > 0:
            for cid, r in l_rank.items():
                fused[cid] = fused.get(cid, 0.0) + lex_weight / (rrf_k + r)
        order = sorted(fused, key=lambda c: (-fused[c], d_rank.get(c, 10**9), c))
        out: list[Passage] = []
        for cid in order:
            sc = snap.by_id[cid]
            out.append(
                Passage(
                    chunk=sc.chunk,
                    meta=sc.meta,
                    score=fused[cid],
                    dense_rank=d_rank.get(cid),
                    lexical_rank=l_rank.get(cid),
                    dense_score=d_score.get(cid),
                    lexical_score=l_score.get(cid),
                )
            )
        return out
