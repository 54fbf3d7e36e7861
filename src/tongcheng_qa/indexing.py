"""Idempotent ingestion: corpus folder -> articles -> chunks -> embeddings + lexical index.

Order of writes, chosen so that an interrupted ingest never damages the previous index:

1. embed the new chunks and add them to the vector store under new ids (chunk ids carry
   the article's content hash, so they never collide with the live ones);
2. commit articles + chunks to the document store in one transaction (the switch-over);
3. rebuild the lexical index for the new generation (atomic folder rename);
4. delete vectors the document store no longer references.

Readers trust only the document store, so vectors added in step 1 stay invisible until
step 2, and stale vectors are ignored until step 4 removes them. The next ingest re-does
any step a crash skipped: it embeds chunks the vector store lacks and deletes orphans.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .chunking import chunk_article
from .corpus import load_corpus
from .embeddings import Embedder
from .errors import CorpusError
from .index import CORPUS_GLOSSARY_NAME, Index
from .sentence_vectors import chunk_sentences
from .settings import ChunkingSettings
from .types import Article, Chunk

log = logging.getLogger(__name__)

_EMBED_BATCH = 64


@dataclass(frozen=True)
class IngestReport:
    articles: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    errors: tuple[CorpusError, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """The ``ingest --json`` summary object of DESIGN.md."""
        return {
            "articles": self.articles,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "chunks_embedded": self.chunks_embedded,
            "errors": [{"file": e.file, "error": e.reason} for e in self.errors],
        }


def _chunk_metadata(chunk: Chunk, article_date_int: int | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"article_id": chunk.article_id, "idx": chunk.index}
    if article_date_int is not None:
        meta["date_int"] = article_date_int
    return meta


class Ingestor:
    def __init__(self, index: Index, embedder: Embedder, chunking: ChunkingSettings) -> None:
        self.index = index
        self.embedder = embedder
        self.chunking = chunking

    # -- public ------------------------------------------------------------------------------
    def ingest(self, corpus_dir: Path, *, progress: bool = True) -> IngestReport:
        """Make the index mirror ``corpus_dir``: add new files, replace changed ones, drop deleted ones.

        Files that fail to load are reported and keep their previously indexed version.
        """
        with self._exclusive():
            articles, errors = load_corpus(corpus_dir)
            self._sync_corpus_glossary(corpus_dir)
            existing = self.index.docstore.article_hashes()
            loaded_ids = {a.article_id for a in articles}
            failed_ids = {_article_id_of(e.file, corpus_dir) for e in errors}
            added = [a for a in articles if a.article_id not in existing]
            updated = [a for a in articles if a.article_id in existing and existing[a.article_id] != a.content_hash]
            removed = sorted(set(existing) - loaded_ids - failed_ids)
            embedded = self._apply(added + updated, removed, progress=progress)
            return IngestReport(
                articles=len(articles),
                added=len(added),
                updated=len(updated),
                removed=len(removed),
                unchanged=len(articles) - len(added) - len(updated),
                chunks_embedded=embedded,
                errors=tuple(errors),
            )

    def upsert(self, articles: Sequence[Article], *, progress: bool = False) -> int:
        """Add or replace the given articles (unchanged ones are skipped). Returns chunks embedded."""
        with self._exclusive():
            existing = self.index.docstore.article_hashes()
            changed = [a for a in articles if existing.get(a.article_id) != a.content_hash]
            return self._apply(changed, [], progress=progress)

    def remove(self, article_ids: Sequence[str]) -> int:
        """Remove articles by id. Returns how many were present."""
        with self._exclusive():
            existing = self.index.docstore.article_hashes()
            present = [a for a in article_ids if a in existing]
            self._apply([], present, progress=False)
            return len(present)

    # -- internals -----------------------------------------------------------------------------
    def _apply(self, changed: Sequence[Article], removed: Sequence[str], *, progress: bool) -> int:
        docstore, vectors = self.index.docstore, self.index.vectors
        new_chunks: list[tuple[Article, list[Chunk]]] = [
            (a, chunk_article(a, self.chunking.max_chars, self.chunking.overlap_sentences)) for a in changed
        ]
        # Chunks to embed: those of changed articles, plus any live chunk the vector store
        # lacks (a crash before, or a new embedding model / collection).
        stored_ids = vectors.ids()
        touched = {a.article_id for a in changed} | set(removed)
        to_embed: list[tuple[Chunk, int | None]] = [
            (c, a.date_int) for a, chunks in new_chunks for c in chunks if c.chunk_id not in stored_ids
        ]
        for sc in docstore.all_chunks():
            if sc.chunk.article_id not in touched and sc.chunk.chunk_id not in stored_ids:
                to_embed.append((sc.chunk, sc.date_int))
        self._embed_and_store(to_embed, progress=progress)

        if new_chunks or removed:
            docstore.apply(new_chunks, removed)
        docstore.set_meta("embedding_model", self.index.model_name)
        snap = self.index.snapshot()  # build the lexical index for the new generation now
        # Sentence vectors are a cache the evidence selector fills on demand; filling it here
        # keeps answering fast. Every live chunk is checked, so an index built before the
        # cache existed (or a crash) is completed by the next ingest.
        live_chunks = [c.chunk for c in snap.chunks]
        sentences = self.index.sentence_vectors
        if self.chunking.embed_sentences:
            sentences.fill(self.embedder, live_chunks, progress=progress)
        if changed or removed:
            sentences.prune(s for c in live_chunks for s in chunk_sentences(c))

        live = set(docstore.chunk_ids())
        orphans = sorted((stored_ids | {c.chunk_id for c, _ in to_embed}) - live)
        if orphans:
            vectors.delete(orphans)
        return len(to_embed)

    def _embed_and_store(self, items: list[tuple[Chunk, int | None]], *, progress: bool) -> None:
        if not items:
            return
        bar = tqdm(
            total=len(items), desc="Embedding chunks", unit="chunk", disable=not progress, file=sys.stderr, leave=False
        )
        try:
            for i in range(0, len(items), _EMBED_BATCH):
                batch = items[i : i + _EMBED_BATCH]
                vecs = self.embedder.embed_passages([c.embedding_text() for c, _ in batch])
                self.index.vectors.add(
                    [c.chunk_id for c, _ in batch], vecs, [_chunk_metadata(c, d) for c, d in batch]
                )
                bar.update(len(batch))
        finally:
            bar.close()

    def _sync_corpus_glossary(self, corpus_dir: Path) -> None:
        """Copy ``<corpus>/glossary.tsv`` into the data dir so queries use the same dictionary."""
        src = corpus_dir / CORPUS_GLOSSARY_NAME
        dst = self.index.data_dir / CORPUS_GLOSSARY_NAME
        old = dst.read_bytes() if dst.exists() else None
        new = src.read_bytes() if src.is_file() else None
        if old == new:
            return
        if new is None:
            dst.unlink()
        else:
            fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".glossary.")
            with os.fdopen(fd, "wb") as fh:
                fh.write(new)
            os.replace(tmp, dst)
        self.index.reload_glossary()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One ingest at a time per data dir (across processes)."""
        path = self.index.data_dir / "ingest.lock"
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("another ingest is running on %s; waiting for it", self.index.data_dir)
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _article_id_of(file: str, root: Path) -> str:
    p = Path(file)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()

