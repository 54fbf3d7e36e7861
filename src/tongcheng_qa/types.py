"""Core records. Frozen dataclasses; the data flows one way through them.

Article -> Chunk (offsets into Article.body) -> Passage (a retrieved Chunk with scores).
Citation and Answer are defined by the answer contract in DESIGN.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Lang = Literal["zh", "en"]


@dataclass(frozen=True)
class Article:
    """One source document, after loading and normalisation.

    ``body`` is the text every offset refers to: ``Chunk.start/end`` and
    ``Citation.start/end`` index into it.
    """

    article_id: str  # path relative to the corpus folder, '/'-separated
    title: str
    body: str
    date: str | None = None  # YYYY-MM-DD
    source: str | None = None  # outlet
    url: str | None = None
    content_hash: str = ""  # sha256 of the normalised title + metadata + body

    @property
    def date_int(self) -> int | None:
        """Date as YYYYMMDD int (for range filters), or None."""
        if not self.date:
            return None
        return int(self.date.replace("-", ""))


@dataclass(frozen=True)
class Chunk:
    """A contiguous span of an article body: ``text == article.body[start:end]``."""

    chunk_id: str
    article_id: str
    index: int  # position of the chunk within its article, 0-based
    text: str
    start: int
    end: int
    context: str = ""  # title / section heading the chunk sits under (not part of text)

    def embedding_text(self) -> str:
        """What the embedder and BM25 see: the context line, then the text."""
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass(frozen=True)
class ArticleMeta:
    """What a citation needs to name its source."""

    article_id: str
    title: str
    date: str | None = None
    source: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused score and the per-retriever ranks."""

    chunk: Chunk
    meta: ArticleMeta
    score: float
    dense_rank: int | None = None  # 1-based rank in the dense list, None if absent
    lexical_rank: int | None = None  # 1-based rank in the BM25 list, None if absent
    dense_score: float | None = None  # cosine similarity
    lexical_score: float | None = None  # raw BM25 score

    @property
    def chunk_id(self) -> str:
        return self.chunk.chunk_id

    @property
    def article_id(self) -> str:
        return self.chunk.article_id


@dataclass(frozen=True)
class Citation:
    n: int
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    chunk_id: str
    quote: str  # verbatim article text
    start: int  # quote == body[start:end]
    end: int


@dataclass(frozen=True)
class RetrievedRef:
    chunk_id: str
    article_id: str
    score: float


@dataclass(frozen=True)
class Answer:
    answer: str
    language: Lang
    refused: bool
    standalone_question: str
    citations: tuple[Citation, ...] = ()
    retrieved: tuple[RetrievedRef, ...] = ()
    engine: str = "extractive"
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: The answer itself, without the quote around it ("4家", "6∶4", "2023年"): a verbatim
    #: span of the first citation's quote, or None when the question asks for no short fact.
    short_answer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The Answer JSON of DESIGN.md (API, CLI ``--json``, eval results)."""
        return asdict(self)
