"""The article catalogue: list, read, add, replace and remove articles of the served corpus.

Articles added through the API are written into the corpus folder as Markdown with front
matter, then indexed incrementally. The folder stays the source of truth, so the next
``tongcheng-qa ingest`` / ``serve`` of that folder keeps them (and a removal deletes the
file, so it does not come back). The file is parsed by the same loader a folder ingest uses,
so its content hash matches and a later ingest sees it as unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from .corpus import DEFAULT_MAX_BYTES, load_article
from .errors import (
    ArticleNotFoundError,
    BadRequestError,
    CorpusError,
    StoreUnavailableError,
)
from .knowledge_base import KnowledgeBase
from .stores.docstore import ArticleSummary
from .types import Article

#: Ids of articles written through the API: a relative path of safe segments ending in .md.
_ID = re.compile(r"^(?:[A-Za-z0-9_\-\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]*/)*[A-Za-z0-9_\-\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]*\.md$")
MAX_ID_CHARS = 200


@dataclass(frozen=True)
class ArticleDraft:
    """An article as a client submits it."""

    title: str
    body: str
    date: str | None = None
    source: str | None = None
    url: str | None = None
    article_id: str | None = None


@dataclass(frozen=True)
class PutResult:
    article_id: str
    status: Literal["added", "updated", "unchanged"]
    chunks: int


def _check_id(article_id: str) -> str:
    if len(article_id) > MAX_ID_CHARS or not _ID.match(article_id) or any(
        part in ("", ".", "..") for part in article_id.split("/")
    ):
        raise BadRequestError(
            f"Invalid article_id {article_id[:80]!r}: use a relative path of letters, digits, '-', '_' and '.' "
            "segments ending in .md, e.g. 'news/2024-01-19-jinshi.md' (or leave it out to get one)."
        )
    return article_id


def _default_id(draft: ArticleDraft) -> str:
    digest = hashlib.sha256(f"{draft.title}\n{draft.date}\n{draft.body}".encode()).hexdigest()[:12]
    return f"api/{draft.date or 'undated'}-{digest}.md"


def _markdown(draft: ArticleDraft) -> str:
    front = {k: v for k, v in (("title", draft.title), ("date", draft.date), ("source", draft.source),
                                ("url", draft.url)) if v}
    head = yaml.safe_dump(front, allow_unicode=True, sort_keys=False, default_flow_style=False, width=10_000)
    return f"---\n{head}---\n\n{draft.body.strip()}\n"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArticleCatalog:
    def __init__(self, kb: KnowledgeBase, corpus_dir: Path) -> None:
        self.kb = kb
        self.corpus_dir = Path(corpus_dir)

    # -- reads -----------------------------------------------------------------------------
    def list(self, keyword: str | None = None) -> list[ArticleSummary]:
        return self.kb.index.docstore.list_articles(keyword.strip() if keyword and keyword.strip() else None)

    def get(self, article_id: str) -> Article:
        article = self.kb.index.docstore.get_article(article_id)
        if article is None:
            raise ArticleNotFoundError(
                f"No article {article_id!r} in the index; list the articles with GET /v1/articles."
            )
        return article

    def n_chunks(self, article_id: str) -> int:
        return len(self.kb.index.docstore.chunk_ids([article_id]))

    # -- writes ----------------------------------------------------------------------------
    def _path(self, article_id: str) -> Path:
        path = (self.corpus_dir / article_id).resolve()
        if not path.is_relative_to(self.corpus_dir.resolve()):
            raise BadRequestError(f"article_id {article_id!r} points outside the corpus folder.")
        return path

    def put(self, draft: ArticleDraft) -> PutResult:
        """Write the article into the corpus folder and index it (replacing an article with that id)."""
        if not draft.title.strip():
            raise BadRequestError("The article needs a title.")
        if not draft.body.strip():
            raise BadRequestError("The article body is empty; send the article text in `body`.")
        if any("\x00" in (v or "") for v in (draft.title, draft.body, draft.source, draft.url)):
            raise BadRequestError("The article contains NUL characters (\\u0000); send plain text.")
        article_id = _check_id(draft.article_id) if draft.article_id else _default_id(draft)
        path = self._path(article_id)
        data = _markdown(draft).encode("utf-8")
        if len(data) > DEFAULT_MAX_BYTES:
            raise BadRequestError(f"The article is {len(data) / 1e6:.1f} MB; the limit is "
                                  f"{DEFAULT_MAX_BYTES / 1e6:.0f} MB. Split it into separate articles.")
        existed = self.kb.index.docstore.article_hashes().get(article_id)
        previous = path.read_bytes() if path.exists() else None
        try:
            _write_atomic(path, data)
        except OSError as exc:
            raise StoreUnavailableError(
                f"Cannot write {article_id} into the corpus folder {self.corpus_dir} ({exc.strerror or exc}); "
                "check that the folder exists and is writable by the server."
            ) from exc
        try:
            article = load_article(path, self.corpus_dir)
            self.kb.ingestor.upsert([article])
        except BaseException as exc:
            self._restore(path, previous)  # no half-added article: the folder matches the index again
            if isinstance(exc, CorpusError):
                raise BadRequestError(f"The article cannot be read: {exc.reason}.") from exc
            raise
        status: Literal["added", "updated", "unchanged"] = (
            "added" if existed is None else "unchanged" if existed == article.content_hash else "updated"
        )
        return PutResult(article_id, status, self.n_chunks(article_id))

    def delete(self, article_id: str) -> None:
        """Remove the article from the index and its file from the corpus folder."""
        self.get(article_id)
        path = self._path(article_id)
        # File first: if removing it from the index fails, the next ingest removes it anyway;
        # the other order could bring a deleted article back.
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"Cannot delete {article_id} from the corpus folder {self.corpus_dir} ({exc.strerror or exc}); "
                "check the folder's permissions."
            ) from exc
        self.kb.ingestor.remove([article_id])

    @staticmethod
    def _restore(path: Path, previous: bytes | None) -> None:
        try:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                _write_atomic(path, previous)
        except OSError:
            pass
