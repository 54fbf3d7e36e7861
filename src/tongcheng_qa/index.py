"""The on-disk index: document store + vector store + lexical index, and a consistent view.

Layout under ``data_dir``::

    docstore.sqlite3        articles, chunks, generation (source of truth)
    chroma/                 embedded Chroma (persistent mode)
    lexical/gen-<N>-<g>/    BM25 index for generation N and glossary hash g
    sentences.sqlite3       e5 vectors of the chunks' sentences (evidence selection)
    glossary.tsv            the corpus's own glossary, copied at ingest
    ingest.lock             held while an ingest runs
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .glossary import Glossary, load_glossary
from .lexical import LexicalIndex, LexicalTokenizer
from .sentence_vectors import FILE_NAME as SENTENCE_VECTORS_FILE
from .sentence_vectors import SentenceVectorStore
from .settings import Settings
from .stores.base import SearchFilter, VectorStore
from .stores.chroma import ChromaVectorStore
from .stores.docstore import DocStore, StoredChunk

CORPUS_GLOSSARY_NAME = "glossary.tsv"
_GEN_DIR = re.compile(r"^gen-(\d+)-")


@dataclass(frozen=True)
class Snapshot:
    """The chunks of one index generation, with the lexical index aligned to them."""

    generation: int
    chunks: tuple[StoredChunk, ...]
    by_id: dict[str, StoredChunk]
    lexical: LexicalIndex

    def mask(self, flt: SearchFilter | None) -> np.ndarray | None:
        """0/1 weight per chunk position for the lexical retriever, or None for no filter."""
        if flt is None or flt.is_empty:
            return None
        return np.fromiter(
            (flt.admits(c.chunk.article_id, c.date_int) for c in self.chunks), dtype=np.float32, count=len(self.chunks)
        )


class Index:
    def __init__(self, settings: Settings, model_name: str, vectors: VectorStore | None = None) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.model_name = model_name
        self.docstore = DocStore(self.data_dir / "docstore.sqlite3")
        self.vectors: VectorStore = vectors or ChromaVectorStore(settings.chroma, self.data_dir / "chroma", model_name)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._glossary: Glossary | None = None
        self._tokenizer: LexicalTokenizer | None = None
        self._sentence_vectors: SentenceVectorStore | None = None

    @property
    def sentence_vectors(self) -> SentenceVectorStore:
        """Sentence vectors for evidence selection (opened on first use)."""
        if self._sentence_vectors is None:
            self._sentence_vectors = SentenceVectorStore(self.data_dir / SENTENCE_VECTORS_FILE, self.model_name)
        return self._sentence_vectors

    # -- glossary and tokenizer ------------------------------------------------------------
    def glossary_paths(self) -> list[Path]:
        paths = [self.data_dir / CORPUS_GLOSSARY_NAME]
        paths += list(self.settings.glossary_files)
        return [p for p in paths if p.exists()]

    @property
    def glossary(self) -> Glossary:
        if self._glossary is None:
            self._glossary = load_glossary(self.glossary_paths())
        return self._glossary

    @property
    def tokenizer(self) -> LexicalTokenizer:
        if self._tokenizer is None:
            self._tokenizer = LexicalTokenizer(self.glossary.zh_terms())
        return self._tokenizer

    def _glossary_hash(self) -> str:
        h = hashlib.sha256()
        for term in sorted(self.glossary.zh_terms()):
            h.update(term.encode("utf-8") + b"\0")
        return h.hexdigest()[:10]

    def reload_glossary(self) -> None:
        """Forget the cached glossary/tokenizer (after ingest copied a new corpus glossary)."""
        with self._lock:
            self._glossary = None
            self._tokenizer = None
            self._snapshot = None

    # -- consistent view ---------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The current generation's chunks and lexical index (cached until the generation changes)."""
        gen = self.docstore.generation()
        snap = self._snapshot
        if snap is not None and snap.generation == gen:
            return snap
        with self._lock:
            if self._snapshot is not None and self._snapshot.generation == gen:
                return self._snapshot
            self._snapshot = self._load_snapshot(gen)
            return self._snapshot

    def _lexical_dir(self, generation: int) -> Path:
        return self.data_dir / "lexical" / f"gen-{generation}-{self._glossary_hash()}"

    def _load_snapshot(self, generation: int) -> Snapshot:
        chunks = self.docstore.all_chunks()
        ids = [c.chunk.chunk_id for c in chunks]
        folder = self._lexical_dir(generation)
        lexical: LexicalIndex | None = None
        if folder.exists():
            try:
                lexical = LexicalIndex.load(folder)
            except (OSError, ValueError):
                lexical = None
            if lexical is not None and lexical.chunk_ids != ids:
                lexical = None  # written for other content: rebuild
        if lexical is None:
            lexical = self.build_lexical(chunks)
            lexical.save(folder)
            self._prune_lexical(generation)
        return Snapshot(
            generation=generation,
            chunks=tuple(chunks),
            by_id={c.chunk.chunk_id: c for c in chunks},
            lexical=lexical,
        )

    def build_lexical(self, chunks: list[StoredChunk]) -> LexicalIndex:
        tok = self.tokenizer
        return LexicalIndex.build(
            [c.chunk.chunk_id for c in chunks], [tok.tokenize(c.chunk.embedding_text()) for c in chunks]
        )

    def _prune_lexical(self, generation: int) -> None:
        """Remove lexical indexes of older generations (never a newer one another process wrote)."""
        for p in (self.data_dir / "lexical").iterdir():
            m = _GEN_DIR.match(p.name)
            if m and int(m.group(1)) < generation:
                shutil.rmtree(p, ignore_errors=True)
