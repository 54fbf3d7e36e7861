"""Chroma implementation of the VectorStore seam: embedded, HTTP server, or in-memory.

Embeddings are always computed by the project's embedder and passed in explicitly; the
collection is created with ``embedding_function=None`` so Chroma never tries to download
its default model (which fails offline).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreUnavailableError
from ..settings import ChromaSettings
from .base import SearchFilter, VectorHit

_ADD_BATCH = 1000


def collection_name(prefix: str, model_name: str) -> str:
    """A valid Chroma collection name that differs per embedding model."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name.strip("/")).strip("-._")[-40:]
    name = f"{prefix}-{slug}" if slug else prefix
    name = re.sub(r"[^A-Za-z0-9._-]", "-", name)
    return name.strip("-._")[:512] or "tongcheng-chunks"


def _client(settings: ChromaSettings, persist_dir: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaClientSettings

    client_settings = ChromaClientSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.mode == "persistent":
        persist_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(persist_dir), settings=client_settings)
    if settings.mode == "ephemeral":
        return chromadb.EphemeralClient(settings=client_settings)
    try:
        client = chromadb.HttpClient(host=settings.host, port=settings.port, settings=client_settings)
        client.heartbeat()
    except Exception as exc:  # chromadb raises several types for a refused connection
        raise StoreUnavailableError(_unreachable(settings, exc)) from exc
    return client


def _unreachable(settings: ChromaSettings, exc: BaseException) -> str:
    return (
        f"Chroma server at http://{settings.host}:{settings.port} is unreachable ({type(exc).__name__}). "
        f"Start it with `chroma run --path DIR --host {settings.host} --port {settings.port}`, "
        "or set TONGCHENG_QA_CHROMA__MODE=persistent to use the embedded store."
    )


def _where(flt: SearchFilter | None) -> dict[str, Any] | None:
    if flt is None or flt.is_empty:
        return None
    clauses: list[dict[str, Any]] = []
    lo, hi = flt.date_bounds()
    if lo is not None:
        clauses.append({"date_int": {"$gte": lo}})
    if hi is not None:
        clauses.append({"date_int": {"$lte": hi}})
    if flt.article_ids:
        clauses.append({"article_id": {"$in": list(flt.article_ids)}})
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": clauses}


class ChromaVectorStore:
    """One Chroma collection, cosine space, holding one vector per chunk id."""

    def __init__(self, settings: ChromaSettings, persist_dir: Path, model_name: str) -> None:
        self._settings = settings
        self.name = collection_name(settings.collection_prefix, model_name)
        self._client = _client(settings, persist_dir)
        self._collection = self._guard(
            lambda: self._client.get_or_create_collection(
                self.name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedding_model": model_name},
            )
        )

    def _guard(self, fn: Any) -> Any:
        """Run a Chroma call; in server mode, turn connection failures into a clear error."""
        if self._settings.mode != "http":
            return fn()
        try:
            return fn()
        except StoreUnavailableError:
            raise
        except Exception as exc:
            if _is_connection_error(exc):
                raise StoreUnavailableError(_unreachable(self._settings, exc)) from exc
            raise

    def add(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None:
        for i in range(0, len(ids), _ADD_BATCH):
            sl = slice(i, i + _ADD_BATCH)
            batch_ids, batch_vecs, batch_meta = list(ids[sl]), embeddings[sl], [dict(m) for m in metadatas[sl]]
            self._guard(lambda: self._collection.upsert(ids=batch_ids, embeddings=batch_vecs, metadatas=batch_meta))

    def delete(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), _ADD_BATCH):
            batch = list(ids[i : i + _ADD_BATCH])
            self._guard(lambda: self._collection.delete(ids=batch))

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._guard(lambda: self._collection.get(include=[], limit=page, offset=offset))
            out.update(got["ids"])
            if len(got["ids"]) < page:
                return out
            offset += page

    def count(self) -> int:
        return int(self._guard(self._collection.count))

    def query(self, embedding: np.ndarray, k: int, flt: SearchFilter | None = None) -> list[VectorHit]:
        if k <= 0:
            return []
        res = self._guard(
            lambda: self._collection.query(
                query_embeddings=[np.asarray(embedding, dtype=np.float32)],
                n_results=k,
                where=_where(flt),
                include=["distances"],
            )
        )
        ids = res["ids"][0] if res["ids"] else []
        dists = res["distances"][0] if res.get("distances") else [1.0] * len(ids)
        # cosine space: distance = 1 - cosine similarity
        return [VectorHit(chunk_id=i, score=1.0 - float(d)) for i, d in zip(ids, dists, strict=True)]


def _is_connection_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc)).lower()
    return bool(
        names & {"ConnectError", "ConnectionError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError"}
        or "connection refused" in text
        or "could not connect" in text
    )


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen
