"""Wires settings into the index, the embedder, the ingestor and the retriever.

Callers (CLI, API, eval) build one ``KnowledgeBase`` from a ``Settings`` and use it; the
embedding model is loaded on first use, so commands that only read the document store
(listing articles, ``models``) stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from .embeddings import Embedder
from .errors import IndexNotReadyError
from .index import Index
from .indexing import Ingestor, IngestReport
from .retrieval import HybridRetriever
from .sentence_vectors import EmbeddingSimilarity
from .settings import Settings
from .stores.base import SearchFilter
from .types import Passage


class KnowledgeBase:
    def __init__(self, settings: Settings, embedder: Embedder | None = None, index: Index | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self.index = index or Index(settings, model_name=embedder.name if embedder else settings.embedding.model)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from .embeddings import build_embedder

            self._embedder = build_embedder(self.settings.embedding, self.settings.models_dir)
        return self._embedder

    @cached_property
    def ingestor(self) -> Ingestor:
        return Ingestor(self.index, self.embedder, self.settings.chunking)

    @cached_property
    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.index, self.embedder, self.settings.retrieval)

    def ingest(self, corpus_dir: Path | None = None, *, progress: bool = True) -> IngestReport:
        return self.ingestor.ingest(corpus_dir or self.settings.corpus_dir, progress=progress)

    def check_ready(self) -> None:
        """Raise IndexNotReadyError with the fix when the index can't answer queries."""
        built_with = self.index.docstore.get_meta("embedding_model")
        if built_with is None or not self.index.docstore.article_hashes():
            raise IndexNotReadyError(
                f"The index in {self.settings.data_dir} is empty. Build it with `tongcheng-qa ingest [DIR]` "
                "(default DIR: corpus/)."
            )
        if built_with != self.index.model_name:
            raise IndexNotReadyError(
                f"The index in {self.settings.data_dir} was built with the embedding model {built_with!r}, "
                f"but the settings select {self.index.model_name!r}. Run `tongcheng-qa ingest` to embed the "
                "corpus with the selected model, or set TONGCHENG_QA_EMBEDDING__MODEL back."
            )

    @cached_property
    def _similarity(self) -> EmbeddingSimilarity:
        return EmbeddingSimilarity(self.embedder, self.index.sentence_vectors)

    def similarities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """Cosine similarity of ``question`` to each sentence (e5; sentence vectors cached at ingest)."""
        return self._similarity.similarities(question, sentences)

    def search(self, query: str, k: int | None = None, flt: SearchFilter | None = None) -> list[Passage]:
        self.check_ready()
        return self.retriever.search(query, k=k, flt=flt)
