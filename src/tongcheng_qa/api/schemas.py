"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema).

The Answer shape is the contract of DESIGN.md; the OpenAI-compatible bodies follow the
Chat Completions API, with the citations in an extra ``citations`` field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..assistant import MAX_HISTORY_TURNS, MAX_QUESTION_CHARS

Date = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
#: One history turn or chat message may be long (a previous answer), but not unbounded.
MAX_TURN_CHARS = 8000


class ErrorOut(BaseModel):
    error: str = Field(description="What went wrong and how to fix it.")


# -- answers -------------------------------------------------------------------------------------

class CitationOut(BaseModel):
    n: int = Field(description="The [n] marker in the answer text.")
    article_id: str
    title: str
    date: str | None
    source: str | None = Field(description="The outlet.")
    url: str | None
    chunk_id: str
    quote: str = Field(description="Verbatim article text: equals body[start:end].")
    start: int
    end: int


class RetrievedOut(BaseModel):
    chunk_id: str
    article_id: str
    score: float


class AnswerOut(BaseModel):
    answer: str
    language: Literal["zh", "en"]
    refused: bool = Field(description="True when the sources don't answer the question.")
    standalone_question: str = Field(description="The question after follow-up rewriting.")
    citations: list[CitationOut]
    retrieved: list[RetrievedOut]
    engine: Literal["extractive", "llm"]
    timings_ms: dict[str, float]
    short_answer: str | None = Field(
        default=None, description="The answer span alone (a number, date, name...), taken verbatim from the first quote."
    )
    session_id: str | None = Field(default=None, description="Set when the question was asked in a session.")


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=MAX_TURN_CHARS)]


class AskIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"question": "金什合作产业园入驻了几家企业?"},
                                        {"question": "What is its shareholding ratio?", "session_id": "…"}]},
    )

    question: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUESTION_CHARS)]
    history: Annotated[list[TurnIn], Field(max_length=MAX_HISTORY_TURNS)] | None = Field(
        default=None, description="Earlier turns, oldest first (or use session_id).")
    session_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="A session from POST /v1/sessions: its history is used and the turn stored.")
    engine: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        default=None, description="extractive (default), openai or llamacpp.")
    top_k: int | None = Field(default=None, ge=1, le=20, description="Passages handed to the answer engine.")
    date_from: Date | None = None
    date_to: Date | None = None
    articles: Annotated[list[Annotated[str, StringConstraints(max_length=300)]], Field(max_length=50)] | None = Field(
        default=None, description="Only search these article ids.")


# -- sessions ------------------------------------------------------------------------------------

class SessionCreatedOut(BaseModel):
    session_id: str
    created_at: float


class StoredTurnOut(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    answer: AnswerOut | None = Field(description="The full Answer (with citations) for assistant turns.")
    created_at: float


class SessionOut(BaseModel):
    session_id: str
    created_at: float
    turns: list[StoredTurnOut]


# -- articles ------------------------------------------------------------------------------------

class ArticleSummaryOut(BaseModel):
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    chunks: int


class ArticleListOut(BaseModel):
    articles: list[ArticleSummaryOut]


class ArticleOut(ArticleSummaryOut):
    body: str = Field(description="The article text that citation offsets index into.")


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    article_id: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Relative path ending in .md; new id when left out. An existing id is replaced.")
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    body: Annotated[str, StringConstraints(min_length=1)]
    date: Date | None = None
    source: Annotated[str, StringConstraints(max_length=200)] | None = None
    url: Annotated[str, StringConstraints(max_length=2000)] | None = None


class ArticlePutOut(BaseModel):
    article_id: str
    status: Literal["added", "updated", "unchanged"]
    chunks: int


class ArticleDeletedOut(BaseModel):
    article_id: str
    deleted: bool


# -- health --------------------------------------------------------------------------------------

class LLMStatusOut(BaseModel):
    configured: bool
    reachable: bool | None = Field(description="None when no LLM endpoint is configured.")
    base_url: str | None = None
    error: str | None = None


class ReadyOut(BaseModel):
    status: Literal["ready"]
    instance: str = Field(description="A random id of the serving process (new on each start): with several "
                                      "workers, tells them apart.")
    articles: int
    chunks: int
    vectors: int
    model: str
    default_engine: str
    llm: LLMStatusOut


# -- OpenAI-compatible ---------------------------------------------------------------------------

class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: Annotated[str, StringConstraints(max_length=MAX_TURN_CHARS)] | list[dict[str, Any]] | None = None


class ChatCompletionIn(BaseModel):
    model_config = ConfigDict(  # temperature, top_p, ... are accepted and ignored
        extra="ignore",
        json_schema_extra={"examples": [{"model": "tongcheng-qa",
                                         "messages": [{"role": "user", "content": "金什合作产业园入驻了几家企业?"}]}]},
    )

    model: Annotated[str, StringConstraints(max_length=64)] = "tongcheng-qa"
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=2 * MAX_HISTORY_TURNS + 2)]
    stream: bool = False


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoiceOut(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: Literal["stop"] = "stop"


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoiceOut]
    citations: list[CitationOut] = Field(description="Extra field: the verified citations of the answer.")
    refused: bool = Field(description="Extra field: the sources don't answer the question.")


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "tongcheng_qa"


class ModelListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
