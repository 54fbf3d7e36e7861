"""Sentence-level e5 vectors: how close each evidence sentence is to the question, in any language.

The evidence selector compares the question with every sentence of the retrieved passages.
Embedding ~50 sentences per question would cost ~0.3 s on 2 cores, so sentence vectors are
computed once at ingest (``SentenceVectorStore.fill``) and kept in ``sentences.sqlite3``
beside the document store, keyed by a hash of the model name and the sentence text: an
article that changes re-embeds only its new sentences, and a sentence missing from the
store (an index built before this file existed) is embedded on first use and kept.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .chunking import split_sentences
from .embeddings import Embedder
from .types import Chunk

FILE_NAME = "sentences.sqlite3"
#: Sentences shorter than this are never evidence (the extractive engine skips them too).
MIN_SENTENCE_CHARS = 4
_BATCH = 64
_QUERY_CACHE = 256


def chunk_sentences(chunk: Chunk) -> list[str]:
    """The sentences of a chunk the evidence selector considers, in order."""
    out = []
    for a, b in split_sentences(chunk.text):
        sent = chunk.text[a:b].strip()
        if len(sent) >= MIN_SENTENCE_CHARS:
            out.append(sent)
    return out


class SentenceVectorStore:
    """Persistent map sentence text -> L2-normalised vector for one embedding model."""

    def __init__(self, path: Path, model_name: str) -> None:
        self.path = Path(path)
        self.model_name = model_name
        self._local = threading.local()
        with self._conn() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_name}\0{text}".encode()).hexdigest()

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of the texts the store holds (texts it lacks are absent from the result)."""
        keys = {self.key(t): t for t in texts}
        out: dict[str, np.ndarray] = {}
        items = list(keys)
        db = self._conn()
        for i in range(0, len(items), 500):
            part = items[i : i + 500]
            rows = db.execute(
                f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(part))})", part
            ).fetchall()
            for k, blob in rows:
                out[keys[k]] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = [(self.key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors, strict=True)]
        with self._conn() as db:
            db.executemany("INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)", rows)

    def missing(self, texts: Iterable[str]) -> list[str]:
        unique = list(dict.fromkeys(texts))
        have = self.get(unique)
        return [t for t in unique if t not in have]

    def fill(self, embedder: Embedder, chunks: Iterable[Chunk], *, progress: bool = True) -> int:
        """Embed the sentences of ``chunks`` the store lacks. Returns how many were embedded."""
        todo = self.missing(s for c in chunks for s in chunk_sentences(c))
        if not todo:
            return 0
        bar = tqdm(total=len(todo), desc="Embedding sentences", unit="sent", disable=not progress,
                   file=sys.stderr, leave=False)
        try:
            for i in range(0, len(todo), _BATCH):
                batch = todo[i : i + _BATCH]
                self.put(batch, embedder.embed_passages(batch))
                bar.update(len(batch))
        finally:
            bar.close()
        return len(todo)

    def prune(self, live_sentences: Iterable[str]) -> int:
        """Delete vectors of sentences no live chunk holds any more. Returns how many went."""
        keep = {self.key(t) for t in live_sentences}
        db = self._conn()
        stale = [k for (k,) in db.execute("SELECT key FROM vectors") if k not in keep]
        with db:
            for i in range(0, len(stale), 500):
                part = stale[i : i + 500]
                db.execute(f"DELETE FROM vectors WHERE key IN ({','.join('?' * len(part))})", part)
        return len(stale)


class EmbeddingSimilarity:
    """Cosine similarity of a question to sentences, with e5's query/passage prefixes."""

    def __init__(self, embedder: Embedder, store: SentenceVectorStore | None) -> None:
        self.embedder = embedder
        self.store = store
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _query(self, question: str) -> np.ndarray:
        with self._lock:
            hit = self._queries.get(question)
            if hit is not None:
                self._queries.move_to_end(question)
                return hit
        vec = self.embedder.embed_queries([question])[0]
        with self._lock:
            self._queries[question] = vec
            while len(self._queries) > _QUERY_CACHE:
                self._queries.popitem(last=False)
        return vec

    def _sentences(self, sentences: Sequence[str]) -> np.ndarray:
        found = self.store.get(sentences) if self.store is not None else {}
        todo = [s for s in dict.fromkeys(sentences) if s not in found]
        if todo:
            vecs = self.embedder.embed_passages(todo)
            if self.store is not None:
                self.store.put(todo, vecs)
            found.update(zip(todo, vecs, strict=True))
        return np.stack([found[s] for s in sentences]) if sentences else np.zeros((0, self.embedder.dim), np.float32)

    def similarities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        return self._sentences(sentences) @ self._query(question)
