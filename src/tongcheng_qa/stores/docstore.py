"""SQLite document store: articles, their chunks, and the index generation.

It is the source of truth for what the index contains. A change (articles added, replaced
or removed) is one transaction that also bumps ``generation``; the vector store and the
lexical index are reconciled against it, so a crash at any point leaves either the old or
the new state visible, never a mix.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..types import Article, ArticleMeta, Chunk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    date TEXT,
    date_int INTEGER,
    source TEXT,
    url TEXT,
    body TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    n_chunks INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    article_id TEXT NOT NULL REFERENCES articles(article_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    context TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_article ON chunks(article_id, idx);
"""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the retriever needs it: the chunk, its article's metadata, its date."""

    chunk: Chunk
    meta: ArticleMeta
    date_int: int | None


@dataclass(frozen=True)
class ArticleSummary:
    meta: ArticleMeta
    n_chunks: int
    content_hash: str


class DocStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0')")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30.0)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA synchronous=NORMAL")
            with con:  # one transaction: commit on success, roll back on error
                yield con
        finally:
            con.close()

    # -- reads -------------------------------------------------------------------------
    def generation(self) -> int:
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0])

    def get_meta(self, key: str) -> str | None:
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def article_hashes(self) -> dict[str, str]:
        with self._connect() as con:
            return dict(con.execute("SELECT article_id, content_hash FROM articles").fetchall())

    def chunk_ids(self, article_ids: Sequence[str] | None = None) -> list[str]:
        with self._connect() as con:
            if article_ids is None:
                rows = con.execute("SELECT chunk_id FROM chunks").fetchall()
            else:
                rows = []
                for aid in article_ids:
                    rows += con.execute("SELECT chunk_id FROM chunks WHERE article_id=?", (aid,)).fetchall()
        return [r[0] for r in rows]

    def all_chunks(self) -> list[StoredChunk]:
        """Every chunk with its article metadata, in article/chunk order."""
        sql = """
            SELECT c.chunk_id, c.article_id, c.idx, c.start, c."end", c.text, c.context,
                   a.title, a.date, a.source, a.url, a.date_int
            FROM chunks c JOIN articles a ON a.article_id = c.article_id
            ORDER BY c.article_id, c.idx
        """
        with self._connect() as con:
            rows = con.execute(sql).fetchall()
        metas: dict[str, ArticleMeta] = {}
        out: list[StoredChunk] = []
        for cid, aid, idx, start, end, text, context, title, date, source, url, date_int in rows:
            meta = metas.get(aid)
            if meta is None:
                meta = metas[aid] = ArticleMeta(aid, title, date, source, url)
            chunk = Chunk(cid, aid, idx, text, start, end, context)
            out.append(StoredChunk(chunk, meta, date_int))
        return out

    def get_article(self, article_id: str) -> Article | None:
        with self._connect() as con:
            row = con.execute(
                "SELECT article_id, title, body, date, source, url, content_hash FROM articles WHERE article_id=?",
                (article_id,),
            ).fetchone()
        return None if row is None else Article(*row)

    def list_articles(self, keyword: str | None = None) -> list[ArticleSummary]:
        """All articles by id; with ``keyword``, those whose title, source or body contains it
        (case-insensitive for Latin letters)."""
        sql = "SELECT article_id, title, date, source, url, n_chunks, content_hash FROM articles"
        params: tuple[str, ...] = ()
        if keyword:
            like = "%" + keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += " WHERE title LIKE ? ESCAPE '\\' OR body LIKE ? ESCAPE '\\' OR COALESCE(source, '') LIKE ? ESCAPE '\\'"
            params = (like, like, like)
        with self._connect() as con:
            rows = con.execute(sql + " ORDER BY article_id", params).fetchall()
        return [ArticleSummary(ArticleMeta(*r[:5]), r[5], r[6]) for r in rows]

    # -- writes ------------------------------------------------------------------------
    def apply(self, upserts: Sequence[tuple[Article, Sequence[Chunk]]], removed: Sequence[str]) -> int:
        """Replace/insert articles with their chunks and delete others, atomically.

        Returns the new generation number.
        """
        now = time.time()
        with self._connect() as con:
            for aid in removed:
                con.execute("DELETE FROM articles WHERE article_id=?", (aid,))
            for art, chunks in upserts:
                con.execute("DELETE FROM articles WHERE article_id=?", (art.article_id,))
                con.execute(
                    "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        art.article_id,
                        art.title,
                        art.date,
                        art.date_int,
                        art.source,
                        art.url,
                        art.body,
                        art.content_hash,
                        len(chunks),
                        now,
                    ),
                )
                con.executemany(
                    "INSERT INTO chunks VALUES (?,?,?,?,?,?,?)",
                    [(c.chunk_id, c.article_id, c.index, c.start, c.end, c.text, c.context) for c in chunks],
                )
            con.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
            row = con.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0])
