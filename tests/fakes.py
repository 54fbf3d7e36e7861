"""Test doubles. Fast and deterministic; never the only test of a path."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"[A-Za-z]+|\d+|[\u4e00-\u9fff]")


class HashEmbedder:
    """Bag of hashed character bigrams / words -> L2-normalised vector.

    Texts sharing words or Chinese bigrams get similar vectors, which is enough to test
    the plumbing (ingest, stores, fusion) without loading a model.
    """

    def __init__(self, dim: int = 64, name: str = "test/hash-embedder") -> None:
        self._dim = dim
        self._name = name
        self.calls = 0
        self.texts_embedded = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def _vec(self, text: str) -> np.ndarray:
        toks = _TOKEN.findall(text.lower())
        grams = toks + [a + b for a, b in zip(toks, toks[1:], strict=False)]
        v = np.zeros(self._dim, dtype=np.float32)
        for g in grams or [text]:
            h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
            v[h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = float(np.linalg.norm(v))
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)


class FailingEmbedder(HashEmbedder):
    """Raises after embedding ``fail_after`` batches: simulates a crash mid-ingest."""

    def __init__(self, fail_after: int, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.fail_after = fail_after

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        return super().embed_passages(texts)
