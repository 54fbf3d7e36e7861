"""The baseline: the plain LangChain RAG recipe a user would otherwise pick.

LangChain's RAG tutorial: ``RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200, add_start_index=True)`` over each article body, a ``langchain_chroma``
vector store, and the top-4 ``similarity_search``. To compare *retrieval and chunking*
only, everything else is the project's: the same embedding model (the project's embedder
behind a LangChain ``Embeddings`` adapter, e5 prefixes included), the same extractive
answer engine and the same citation verifier, exactly as ``Assistant._answer`` /
``Assistant._verify`` use them. There is no follow-up rewriting: the baseline sees the
last question only, as a plain recipe would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from ..assistant import refusal_text
from ..citations import verify_answer
from ..embeddings import Embedder
from ..generators.base import GenerationRequest
from ..generators.extractive import ExtractiveGenerator
from ..index import Index
from ..sentence_vectors import EmbeddingSimilarity
from ..lang import detect_language
from ..types import (
    Answer,
    Article,
    ArticleMeta,
    Chunk,
    Citation,
    Lang,
    Passage,
    RetrievedRef,
)

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200  # the splitter's and the tutorial's default
TOP_K = 4
COLLECTION = "langchain_baseline"
NAME = "baseline"
LABEL = "baseline: LangChain splitter (1000/200) + Chroma top-4"


class EmbedderAdapter(Embeddings):
    """The project's :class:`Embedder` as a LangChain ``Embeddings`` (passage/query prefixes kept)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.embedder.embed_passages(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.embedder.embed_queries([text])[0]]


def split_articles(articles: Sequence[Article], chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> list[Document]:
    """Split each body; metadata: ``article_id``, ``chunk_id``, ``start_index`` (offset into the body)."""
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True)
    docs: list[Document] = []
    for art in articles:
        for i, doc in enumerate(splitter.create_documents([art.body], metadatas=[{"article_id": art.article_id}])):
            start = int(doc.metadata["start_index"])
            if art.body[start:start + len(doc.page_content)] != doc.page_content:
                start = art.body.find(doc.page_content)  # the splitter's offset search can miss; find it again
                if start < 0:
                    raise AssertionError(f"baseline chunk {i} of {art.article_id} is not verbatim article text")
            doc.metadata.update(start_index=start, chunk_id=f"{art.article_id}#lc-{i:04d}")
            docs.append(doc)
    return docs


def to_passage(doc: Document, score: float, meta: ArticleMeta, rank: int) -> Passage:
    start = int(doc.metadata["start_index"])
    chunk = Chunk(
        chunk_id=str(doc.metadata["chunk_id"]),
        article_id=meta.article_id,
        index=int(doc.metadata["chunk_id"].rsplit("-", 1)[-1]),
        text=doc.page_content,
        start=start,
        end=start + len(doc.page_content),
    )
    return Passage(chunk=chunk, meta=meta, score=score, dense_rank=rank, dense_score=score)


class LangChainBaseline:
    """Answers like the Assistant, but over LangChain's chunks and top-k similarity search."""

    name = NAME
    label = LABEL

    def __init__(self, index: Index, embedder: Embedder, articles: Sequence[Article], persist_dir: Path, top_k: int = TOP_K) -> None:
        self.index = index
        self.top_k = top_k
        self.meta = {a.article_id: ArticleMeta(a.article_id, a.title, a.date, a.source, a.url) for a in articles}
        self.documents = split_articles(articles)
        self.store = Chroma(
            collection_name=COLLECTION, embedding_function=EmbedderAdapter(embedder), persist_directory=str(persist_dir)
        )
        if self.documents:
            self.store.add_documents(self.documents, ids=[d.metadata["chunk_id"] for d in self.documents])
        self.generator = ExtractiveGenerator(index, similarity=EmbeddingSimilarity(embedder, index.sentence_vectors))

    def search(self, question: str, k: int) -> list[Passage]:
        if not self.documents:
            return []
        hits = self.store.similarity_search_with_score(question, k=min(k, len(self.documents)))
        # Chroma's default space is squared L2; for the embedder's unit vectors 1 - d/2 is the cosine.
        return [to_passage(doc, 1.0 - float(distance) / 2, self.meta[doc.metadata["article_id"]], rank)
                for rank, (doc, distance) in enumerate(hits, 1)]

    def ask(self, question: str) -> Answer:
        """The Answer from the top ``top_k`` passages (no history: the plain recipe has none)."""
        t0 = time.perf_counter()
        passages = tuple(self.search(question, self.top_k))
        t1 = time.perf_counter()
        lang = detect_language(question)
        text, refused, citations = self._answer(question, lang, passages)
        t2 = time.perf_counter()
        return Answer(
            answer=text,
            language=lang,
            refused=refused,
            standalone_question=question,
            citations=citations,
            retrieved=tuple(RetrievedRef(p.chunk_id, p.article_id, round(p.score, 6)) for p in passages),
            engine="extractive",
            timings_ms={"retrieve": round((t1 - t0) * 1000, 2), "generate": round((t2 - t1) * 1000, 2),
                        "total": round((t2 - t0) * 1000, 2)},
        )

    def _answer(self, question: str, lang: Lang, passages: tuple[Passage, ...]) -> tuple[str, bool, tuple[Citation, ...]]:
        draft = self.generator.generate(GenerationRequest(question, lang, passages)) if passages else None
        if draft is None or draft.refused or not draft.text.strip():
            return refusal_text(lang, passages), True, ()
        verified = verify_answer(draft.text, passages, lang, self.index.glossary)
        if verified.n_supported == 0 or not verified.citations:
            return refusal_text(lang, passages), True, ()
        return verified.text, False, verified.citations
