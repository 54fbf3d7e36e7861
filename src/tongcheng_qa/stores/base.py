"""The vector-store seam."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class SearchFilter:
    """Restricts retrieval to a date range (inclusive, YYYY-MM-DD) and/or some articles."""

    date_from: str | None = None
    date_to: str | None = None
    article_ids: tuple[str, ...] | None = None

    @property
    def is_empty(self) -> bool:
        return self.date_from is None and self.date_to is None and not self.article_ids

    def date_bounds(self) -> tuple[int | None, int | None]:
        lo = int(self.date_from.replace("-", "")) if self.date_from else None
        hi = int(self.date_to.replace("-", "")) if self.date_to else None
        return lo, hi

    def admits(self, article_id: str, date_int: int | None) -> bool:
        """Whether a chunk of ``article_id`` dated ``date_int`` passes the filter."""
        if self.article_ids and article_id not in self.article_ids:
            return False
        lo, hi = self.date_bounds()
        if lo is None and hi is None:
            return True
        if date_int is None:
            return False
        return (lo is None or date_int >= lo) and (hi is None or date_int <= hi)


@dataclass(frozen=True)
class VectorHit:
    chunk_id: str
    score: float  # cosine similarity, higher is better


class VectorStore(Protocol):
    """Holds one embedding per chunk id, with filterable metadata."""

    def add(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        metadatas: Sequence[Mapping[str, Any]],
    ) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def ids(self) -> set[str]: ...

    def count(self) -> int: ...

    def query(self, embedding: np.ndarray, k: int, flt: SearchFilter | None = None) -> list[VectorHit]: ...
