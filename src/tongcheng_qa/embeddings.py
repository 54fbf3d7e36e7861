"""Embedder protocol and the sentence-transformers implementation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (cosine == dot product)."""

    @property
    def name(self) -> str:
        """Stable identifier of the model (goes into the index metadata)."""
        ...

    @property
    def dim(self) -> int: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 for documents; applies the passage prefix if the model needs one."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 for queries; applies the query prefix if the model needs one."""
        ...
