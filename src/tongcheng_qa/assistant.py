"""The Assistant: question (+history) -> standalone question -> passages -> answer -> verified Answer.

Built as a LangChain (LCEL) chain of small steps over the project's own retriever, answer
engines and citation verifier. The API, CLI, chat UI and evaluation harness all call
``Assistant.ask`` / ``Assistant.stream``; none of them reaches past it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from .analysis import split_question
from .citations import verify_answer
from .conversation import QuestionRewriter, RuleBasedRewriter, Turn
from .errors import BadRequestError
from .generators.base import Draft, GenerationRequest, Generator
from .generators.extractive import Evidence, ExtractiveGenerator
from .generators.registry import ENGINES, UnknownEngineError, build_generator
from .knowledge_base import KnowledgeBase
from .lang import detect_language
from .prompts import NOT_IN_SOURCES
from .settings import Settings
from .stores.base import SearchFilter
from .types import Answer, Lang, Passage, RetrievedRef

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
MAX_HISTORY_TURNS = 20
#: A multi-part question gets at most this many parts' worth of passages.
MAX_PARTS = 3


@dataclass(frozen=True)
class StreamEvent:
    """``token`` events carry text deltas; the single ``final`` event carries the Answer."""

    type: str  # "token" | "final"
    text: str = ""
    answer: Answer | None = None


@dataclass
class _State:
    question: str
    history: tuple[Turn, ...]
    engine: str
    k: int
    flt: SearchFilter | None
    lang: Lang = "zh"
    standalone: str = ""
    passages: tuple[Passage, ...] = ()
    evidence: Evidence = field(default_factory=Evidence)
    timings: dict[str, float] = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)


def refusal_text(lang: Lang, passages: Sequence[Passage]) -> str:
    seen: list[str] = []
    lines: list[str] = []
    for p in passages:
        if p.article_id in seen:
            continue
        seen.append(p.article_id)
        meta = ", ".join(x for x in (p.meta.source, p.meta.date) if x)
        lines.append(f"《{p.meta.title}》({meta})" if lang == "zh" else f"“{p.meta.title}” ({meta})")
        if len(lines) == 3:
            break
    if lang == "zh":
        head = "抱歉,现有资料中没有找到这个问题的答案。"
        return head + ("最相关的来源:" + "；".join(lines) + "。" if lines else "")
    head = "Sorry, the sources don't say."
    return head + (" Closest sources: " + "; ".join(lines) + "." if lines else "")


def _turn(item: Turn | dict[str, str]) -> Turn:
    if isinstance(item, Turn):
        return item
    if not isinstance(item, dict):
        raise BadRequestError('Each history turn must be an object with "role" and "content".')
    role, content = item.get("role"), item.get("content")
    if role not in ("user", "assistant") or not isinstance(content, str):
        raise BadRequestError('Each history turn needs "role" ("user" or "assistant") and "content" (text).')
    return Turn(role, content)


def _pieces(text: str, step: int = 8) -> Iterator[str]:
    """A ready text in small pieces, so clients render it progressively like an LLM's."""
    for i in range(0, len(text), step):
        yield text[i : i + step]


def _says_not_in_sources(text: str, lang: Lang) -> bool:
    t = text.strip().lower()
    return NOT_IN_SOURCES[lang].lower() in t or "not in the sources" in t or "资料中没有" in t


class Assistant:
    def __init__(
        self,
        settings: Settings,
        kb: KnowledgeBase | None = None,
        rewriter: QuestionRewriter | None = None,
        generators: dict[str, Generator] | None = None,
    ) -> None:
        self.settings = settings
        self.kb = kb or KnowledgeBase(settings)
        self._generators: dict[str, Generator] = dict(generators or {})
        # One extractive engine: the relevance gate, the default engine and the LLM fallback.
        self._extractive = ExtractiveGenerator(self.kb.index, similarity=self.kb)
        self._generators.setdefault("extractive", self._extractive)
        self._rewriter = rewriter
        self.chain: Runnable[_State, Answer] = (
            RunnableLambda(self._rewrite) | RunnableLambda(self._retrieve) | RunnableLambda(self._answer)
        )

    # -- components ------------------------------------------------------------------------
    def generator(self, name: str) -> Generator:
        if name not in self._generators:
            if name not in ENGINES:
                raise UnknownEngineError(name)
            self._generators[name] = build_generator(name, self.kb.index, self.settings.llm, self._extractive)
        return self._generators[name]

    @property
    def rewriter(self) -> QuestionRewriter:
        if self._rewriter is None:
            self._rewriter = self._default_rewriter()
        return self._rewriter

    def _default_rewriter(self) -> QuestionRewriter:
        rule = RuleBasedRewriter(self.kb.index.glossary)
        llm = self.settings.llm
        if llm.base_url and llm.rewrite_with_llm:
            from .conversation import LLMRewriter
            from .generators.openai_compat import chat_model

            return LLMRewriter(chat_model(llm), fallback=rule)
        return rule

    # -- chain steps -------------------------------------------------------------------------
    def _rewrite(self, s: _State) -> _State:
        t = time.perf_counter()
        s.lang = detect_language(s.question)
        s.standalone = s.question
        if s.history and self.settings.answer.rewrite_followups:
            s.standalone = self.rewriter.rewrite(s.question, s.history) or s.question
        s.timings["rewrite"] = (time.perf_counter() - t) * 1000
        return s

    def _retrieve(self, s: _State) -> _State:
        t = time.perf_counter()
        s.passages = self._passages(s)
        # The relevance gate for every engine: is there a sentence that answers the question?
        s.evidence = self._extractive.evidence(s.standalone, s.lang, s.passages) if s.passages else Evidence()
        s.timings["retrieve"] = (time.perf_counter() - t) * 1000
        return s

    def _passages(self, s: _State) -> tuple[Passage, ...]:
        """The passages for the question; a multi-part question also gets each part's own
        passages (its parts may be answered by different articles), interleaved by rank."""
        whole = self.kb.search(s.standalone, k=s.k, flt=s.flt)
        parts = split_question(s.standalone)
        if len(parts) < 2:
            return tuple(whole)
        lists = [whole] + [self.kb.search(part, k=s.k, flt=s.flt) for part in parts]
        out: dict[str, Passage] = {}
        for rank in range(s.k):
            for hits in lists:
                if rank < len(hits):
                    out.setdefault(hits[rank].chunk_id, hits[rank])
        return tuple(out.values())[: s.k * min(len(parts), MAX_PARTS)]

    def _answer(self, s: _State) -> Answer:
        t = time.perf_counter()
        if not s.evidence:
            return self._finish(s, t, refusal_text(s.lang, s.passages), refused=True, engine="extractive")
        gen = self.generator(s.engine)
        request = GenerationRequest(s.standalone, s.lang, s.passages)
        if gen is self._extractive:  # the gate already selected the evidence: don't select it again
            return self._extractive_answer(s, t, request)
        draft: Draft = gen.generate(request)
        engine = draft.engine or gen.name
        answer = self._verify(s, t, draft.text, draft.refused, engine)
        if answer.refused and engine != self._extractive.name:
            # The LLM declined (or wrote nothing the sources support) although the relevance
            # gate found an evidence sentence: answer with that evidence instead, marked as such.
            return self._extractive_answer(s, t, request)
        return answer

    # -- assembling the Answer -------------------------------------------------------------------
    def _extractive_answer(self, s: _State, t: float, request: GenerationRequest) -> Answer:
        """The verified extractive answer from the selected evidence, with its short answer."""
        draft = self._extractive.compose(request, s.evidence)
        answer = self._verify(s, t, draft.text, draft.refused, self._extractive.name)
        if answer.refused or not draft.short_answer or draft.short_answer not in answer.answer:
            return answer
        return replace(answer, short_answer=draft.short_answer)

    def _verify(self, s: _State, t: float, text: str, refused: bool, engine: str) -> Answer:
        if refused or not text.strip() or _says_not_in_sources(text, s.lang):
            return self._finish(s, t, refusal_text(s.lang, s.passages), refused=True, engine=engine)
        verified = verify_answer(text, s.passages, s.lang, self.kb.index.glossary)
        if verified.n_supported == 0 or not verified.citations:
            return self._finish(s, t, refusal_text(s.lang, s.passages), refused=True, engine=engine)
        return self._finish(s, t, verified.text, refused=False, engine=engine, citations=verified.citations)

    def _finish(
        self, s: _State, t: float, text: str, *, refused: bool, engine: str, citations: tuple[Any, ...] = ()
    ) -> Answer:
        s.timings["generate"] = (time.perf_counter() - t) * 1000
        s.timings["total"] = (time.perf_counter() - s.t0) * 1000
        return Answer(
            answer=text,
            language=s.lang,
            refused=refused,
            standalone_question=s.standalone,
            citations=tuple(citations),
            retrieved=tuple(RetrievedRef(p.chunk_id, p.article_id, round(p.score, 6)) for p in s.passages),
            engine="extractive" if engine == "extractive" else "llm",
            timings_ms={k: round(v, 2) for k, v in s.timings.items()},
        )

    # -- public ----------------------------------------------------------------------------------
    def _state(
        self,
        question: str,
        history: Sequence[Turn | dict[str, str]] | None,
        engine: str | None,
        top_k: int | None,
        flt: SearchFilter | None,
    ) -> _State:
        if not question or not question.strip():
            raise BadRequestError("The question is empty: ask something, e.g. 金什合作产业园入驻了几家企业?")
        if len(question) > MAX_QUESTION_CHARS:
            raise BadRequestError(f"The question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}.")
        turns = tuple(_turn(t) for t in (history or ()))
        if len(turns) > MAX_HISTORY_TURNS:
            raise BadRequestError(f"The history has {len(turns)} turns; send at most {MAX_HISTORY_TURNS}.")
        name = engine or self.settings.answer.engine
        if name not in ENGINES:
            raise UnknownEngineError(name)
        return _State(question.strip(), turns, name, top_k or self.settings.answer.passages, flt)

    def ask(
        self,
        question: str,
        history: Sequence[Turn | dict[str, str]] | None = None,
        *,
        engine: str | None = None,
        top_k: int | None = None,
        flt: SearchFilter | None = None,
    ) -> Answer:
        self.kb.check_ready()
        return self.chain.invoke(self._state(question, history, engine, top_k, flt))

    def retrieve(
        self,
        question: str,
        history: Sequence[Turn | dict[str, str]] | None = None,
        *,
        top_k: int | None = None,
        flt: SearchFilter | None = None,
    ) -> tuple[str, Lang, tuple[Passage, ...]]:
        """The standalone question, its language and the passages the engines would get
        (the first two chain steps, without answering): for evaluation and model fitting."""
        self.kb.check_ready()
        s = self._rewrite(self._state(question, history, None, top_k, flt))
        return s.standalone, s.lang, self._passages(s)

    def stream(
        self,
        question: str,
        history: Sequence[Turn | dict[str, str]] | None = None,
        *,
        engine: str | None = None,
        top_k: int | None = None,
        flt: SearchFilter | None = None,
    ) -> Iterator[StreamEvent]:
        """Token events as the engine writes, then one final event with the verified Answer.

        The final answer's text is the verified one (markers renumbered, unsupported ones
        dropped); clients should replace the streamed text with it. Bad input and an index
        that is not ready raise here, before the first event, so a server can answer 4xx/503.
        """
        self.kb.check_ready()
        return self._stream(self._state(question, history, engine, top_k, flt))

    def _stream(self, state: _State) -> Iterator[StreamEvent]:
        s = self._retrieve(self._rewrite(state))
        t = time.perf_counter()
        if not s.evidence:
            answer = self._finish(s, t, refusal_text(s.lang, s.passages), refused=True, engine="extractive")
            yield StreamEvent("token", text=answer.answer)
            yield StreamEvent("final", answer=answer)
            return
        gen = self.generator(s.engine)
        request = GenerationRequest(s.standalone, s.lang, s.passages)
        if gen is self._extractive:
            yield from self._extractive_events(s, t, request)
            return
        open_stream = getattr(gen, "open_stream", None)
        engine_used, pieces = open_stream(request) if open_stream else (gen.name, gen.stream(request))
        if engine_used == self._extractive.name:  # the LLM failed before its first token
            yield from self._extractive_events(s, t, request)
            return
        parts: list[str] = []
        first_token_ms: float | None = None
        try:
            for piece in pieces:
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - s.t0) * 1000
                parts.append(piece)
                yield StreamEvent("token", text=piece)
        except Exception as exc:  # noqa: BLE001 - the LLM broke off mid-answer: the evidence answers
            log.warning("LLM stream broke off (%s); answering extractively", type(exc).__name__)
            yield StreamEvent("final", answer=self._extractive_answer(s, t, request))
            return
        if first_token_ms is not None:
            s.timings["first_token"] = first_token_ms
        answer = self._verify(s, t, "".join(parts), False, engine_used)
        if answer.refused:  # as in ask(): the LLM declined or wrote nothing supported, but evidence exists
            answer = self._extractive_answer(s, t, request)
        if not "".join(parts).strip():
            yield StreamEvent("token", text=answer.answer)
        yield StreamEvent("final", answer=answer)

    def _extractive_events(self, s: _State, t: float, request: GenerationRequest) -> Iterator[StreamEvent]:
        """The extractive answer, verified first and then streamed, so the streamed markers
        are already the final ones."""
        answer = self._extractive_answer(s, t, request)
        first_token = round((time.perf_counter() - s.t0) * 1000, 2)
        answer = replace(answer, timings_ms={**answer.timings_ms, "first_token": first_token})
        for piece in _pieces(answer.answer):
            yield StreamEvent("token", text=piece)
        yield StreamEvent("final", answer=answer)
