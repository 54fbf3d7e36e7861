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

import re
from dataclasses import dataclass

from .embeddings import Embedder
from .index import Index, Snapshot
from .lang import detect_language
from .lexical import STOPWORDS
from .settings import RetrievalSettings
from .stores.base import SearchFilter
from .types import Lang, Passage

_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:\.\d+)?")


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
        """Tokens for BM25 and the weight its ranking gets in the fusion.

        Chinese question: weight = coverage of its tokens in the index. English question:
        BM25 can only see the glossary translations of its entities (and numbers), so the
        weight is the share of its content words the glossary translated, times the
        coverage of those translations in the index. An English question with no
        translatable words gets weight 0 and dense retrieval alone decides.
        """
        tok = self.index.tokenizer
        if lang != "en":
            tokens = tok.tokenize(query)
            return LexicalQuery(tuple(tokens), (), snap.lexical.coverage(tokens))
        matches = self.index.glossary.match_english(query) if self.settings.glossary_expansion else []
        expansions = tuple(dict.fromkeys(m.entry.zh for m in matches))
        spans = [(m.start, m.end) for m in matches]
        words = [w for w in _LATIN_WORD.finditer(query) if w.group(0).lower() not in STOPWORDS]
        if not words:
            return LexicalQuery((), expansions, 0.0)
        translated = sum(1 for w in words if any(a <= w.start() < b for a, b in spans))
        numbers = [w.group(0) for w in words if w.group(0)[0].isdigit()]
        tokens = [t for term in expansions for t in tok.tokenize(term)] + numbers
        share = (translated + len(numbers)) / len(words)
        weight = share * snap.lexical.coverage(tokens) if tokens else 0.0
        return LexicalQuery(tuple(tokens), expansions, weight)

    def dense_query(self, query: str, lexical: LexicalQuery | None) -> str:
        """The text embedded for dense search: an English question gets its glossary
        translations appended, which anchors the multilingual embedding in Chinese terms."""
        if lexical is not None and lexical.expansions:
            return f"{query} ({' '.join(lexical.expansions)})"
        return query

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

        lq = self.lexical_query(query, lang, snap) if mode in ("hybrid", "lexical") or lang == "en" else None
        dense: list[tuple[str, float]] = []
        if mode in ("hybrid", "dense"):
            qvec = self.embedder.embed_queries([self.dense_query(query, lq)])[0]
            # Over-fetch a little: ids of a crashed ingest may still sit in the store.
            hits = self.index.vectors.query(qvec, min(cand + 8, len(snap.chunks) + 8), flt)
            dense = [(h.chunk_id, h.score) for h in hits if h.chunk_id in snap.by_id][:cand]

        lexical: list[tuple[str, float]] = []
        lex_weight = 1.0 if mode == "lexical" else 0.0
        if lq is not None and mode in ("hybrid", "lexical"):
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
