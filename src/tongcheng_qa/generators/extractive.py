"""Extractive answer engine: quotes the evidence sentence(s) that answer the question, verbatim.

Deterministic and LLM-free at answer time. The evidence selector (:mod:`..selection`) scores
every sentence of the retrieved passages with a fitted ranker over general signals (e5
similarity, IDF coverage, answer-type fit, constraint agreement, retrieval rank); the best
sentence of each question part is quoted when the fitted answer gate lets it through,
with the runners-up the ranker rates nearly as likely. A number, date or ratio answer
leads with its span (:mod:`..spans`). When no part is answered the engine refuses.
English questions get an English frame and glosses of the Chinese entities quoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..analysis import QuestionAnalysis, QuestionAnalyzer, TermStats, split_question
from ..glossary import Glossary
from ..index import Index
from ..selection import (
    Candidate,
    Selector,
    SentenceSimilarity,
    candidates,
    default_selector,
    select,
)
from ..spans import short_answer
from ..types import Lang, Passage
from .base import Draft, GenerationRequest

#: A sentence that opens with a pronoun/demonstrative needs the one before it to make sense.
_NEEDS_ANTECEDENT = re.compile(r"^(?:[“\"]?)(?:该|这|此|其|它|他|她|上述|对此|(?:This|These|That|It|They|He|She)\b)")


@dataclass(frozen=True)
class Evidence:
    """What the answer quotes: (passage number, sentence) pairs, best first, and the
    parts of a multi-part question the sources don't answer. Falsy when nothing answers."""

    items: tuple[tuple[int, str], ...] = ()
    unanswered: tuple[str, ...] = ()
    #: the answer span of a one-part number/date/ratio question, and its passage number
    short: tuple[int, str] | None = None

    def __bool__(self) -> bool:
        return bool(self.items)


def _frame(lang: Lang, p: Passage, glossary: Glossary) -> str:
    source = p.meta.source
    date = p.meta.date
    if lang == "zh":
        if source and date:
            return f"据{source}({date})报道:"
        return f"据{source}报道:" if source else "据报道:"
    en_source = (glossary.english_for(source) or source) if source else None
    if en_source and date:
        return f"According to {en_source} ({date}):"
    return f"According to {en_source}:" if en_source else "According to the source:"


def _glosses(texts: list[str], glossary: Glossary) -> str:
    pairs: dict[str, str] = {}
    for t in texts:
        for m in glossary.match_chinese(t):
            pairs.setdefault(m.surface, m.entry.en)
    if not pairs:
        return ""
    return "Key terms: " + "; ".join(f"{zh} = {en}" for zh, en in list(pairs.items())[:8]) + "."


class ExtractiveGenerator:
    """Quotes evidence sentences verbatim with [n] markers. Needs the index for term statistics."""

    name = "extractive"

    def __init__(self, index: Index, similarity: SentenceSimilarity | None = None,
                 selector: Selector | None = None) -> None:
        self.index = index
        #: question ~ sentence similarity (e5); without it the selector treats every
        #: sentence as equally similar and decides on the other signals alone
        self.similarity = similarity
        self.selector = selector or default_selector()
        self._stats: tuple[int, TermStats] | None = None
        self._analyzer: tuple[object, QuestionAnalyzer] | None = None

    def _term_stats(self) -> TermStats:
        snap = self.index.snapshot()
        if self._stats is None or self._stats[0] != snap.generation:
            self._stats = (snap.generation, TermStats([c.chunk.embedding_text() for c in snap.chunks]))
        return self._stats[1]

    def analyze(self, question: str, lang: Lang) -> QuestionAnalysis:
        tok = self.index.tokenizer
        if self._analyzer is None or self._analyzer[0] is not tok:
            self._analyzer = (tok, QuestionAnalyzer(tok, self.index.glossary))
        return self._analyzer[1].analyze(question, lang, self._term_stats())

    def parts(self, question: str, lang: Lang) -> list[tuple[str, QuestionAnalysis]]:
        """The question's parts ("…是什么时候签订的?两地明确了多少个合作领域?") with their analyses."""
        return [(part, self.analyze(part, lang)) for part in split_question(question)]

    def candidates(self, question: str, analysis: QuestionAnalysis, passages: tuple[Passage, ...]) -> list[Candidate]:
        """Every candidate sentence for one question part, scored, best first."""
        model = self.selector.for_lang(analysis.lang)
        return candidates(analysis, question, passages, self.similarity, model, self._term_stats().idf)

    def evidence(self, question: str, lang: Lang, passages: tuple[Passage, ...]) -> Evidence:
        """The sentences to quote (each part's best first); empty (falsy) when nothing answers."""
        parts = self.parts(question, lang)
        chosen = select(parts, lambda q, a: self.candidates(q, a, passages), self.selector.for_lang(lang))
        short = None
        if len(parts) == 1 and chosen.best:
            top = chosen.best[0]
            span = short_answer(parts[0][1], parts[0][0], top.text)
            short = (top.n, span) if span else None
        out: list[tuple[int, str]] = []
        for c in chosen.chosen:
            if c.previous and _NEEDS_ANTECEDENT.match(c.text) and (c.n, c.previous) not in out:
                out.append((c.n, c.previous))
            if (c.n, c.text) not in out:
                out.append((c.n, c.text))
        return Evidence(tuple(out), chosen.unanswered_parts, short)

    def generate(self, request: GenerationRequest) -> Draft:
        return self.compose(request, self.evidence(request.question, request.lang, request.passages))

    def compose(self, request: GenerationRequest, chosen: Evidence) -> Draft:
        """The answer text quoting ``chosen`` (from ``evidence``); a refusal when it is empty.

        Parts of a multi-part question that no sentence answers are named at the end, so the
        reader knows what the sources leave open instead of finding it silently dropped.
        """
        items, unanswered, short = chosen.items, chosen.unanswered, chosen.short
        if not items:
            return Draft(text="", refused=True)
        glossary = self.index.glossary
        first = request.passages[items[0][0] - 1]
        if request.lang == "zh":
            body = "".join(f"{text}[{n}]" for n, text in items)
            text = f"{_frame('zh', first, glossary)}{body}"
            if short:  # lead with the answer itself, then the quote that proves it
                text = f"{short[1]}[{short[0]}]\n{text}"
            if unanswered:
                text += "\n现有资料没有提到:" + "；".join(unanswered)
            return Draft(text=text, short_answer=short[1] if short else None)
        quotes = " ".join(f"“{text}” [{n}]" for n, text in items)
        glosses = _glosses([text for _, text in items], glossary)
        text = f"{_frame('en', first, glossary)} {quotes}"
        if short:
            text = f"{short[1]} [{short[0]}]\n{text}"
        if glosses:
            text += f"\n{glosses}"
        if unanswered:
            text += "\nThe sources don't say: " + " ".join(unanswered)
        return Draft(text=text, short_answer=short[1] if short else None)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        draft = self.generate(request)
        # Stream in small pieces so clients render progressively, like an LLM would.
        step = 8
        for i in range(0, len(draft.text), step):
            yield draft.text[i : i + step]
