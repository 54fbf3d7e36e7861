"""Extractive answer engine: quotes the evidence sentence(s) that answer the question, verbatim.

Deterministic and model-free at answer time. Each candidate sentence of the retrieved
passages is scored by how much of the question it covers (IDF-weighted question terms,
glossary entities in either language, numbers) and whether it has the kind of content the
question asks for (a number for 多少 / how many, a date for 何时 / when, a person for 谁 /
who, a proportion for 股比 / ratio, a post for 职务 / position). The best sentence is quoted; a second one is added when it covers question terms the
first lacks (two-passage questions). When nothing covers enough of the question the engine
refuses. English questions get an English frame and glosses of the Chinese entities quoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..analysis import (
    QuestionAnalysis,
    QuestionAnalyzer,
    TermStats,
    coverage,
    split_question,
    type_fits,
)
from ..chunking import split_sentences
from ..glossary import Glossary
from ..index import Index
from ..injection import is_instruction
from ..types import Lang, Passage
from .base import Draft, GenerationRequest

#: A sentence must cover this share of the question's weighted terms to be an answer.
#: Calibrated on the team's answerable vs unanswerable questions (eval/): see the closing
#: notes and eval/reports for the measured error rates.
MIN_COVERAGE = 0.55
#: A second sentence must add at least this share of (uncovered) question weight.
MIN_GAIN = 0.2
#: ... and cover this much of the question on its own.
SECOND_MIN_COVERAGE = 0.4
#: Sentences without the asked-for content (number/date/person) keep this share of their score.
TYPE_MISS_FACTOR = 0.55
#: Tie-breakers: retrieval rank (score += RANK_PRIOR / rank) and the share of question
#: terms the sentence contains itself rather than through its passage's context.
RANK_PRIOR = 0.04
OWN_TERMS_BONUS = 0.06


#: A sentence that opens with a pronoun/demonstrative needs the one before it to make sense.
_NEEDS_ANTECEDENT = re.compile(r"^(?:[“\"]?)(?:该|这|此|其|它|他|她|上述|对此|(?:This|These|That|It|They|He|She)\b)")


@dataclass(frozen=True)
class Candidate:
    n: int  # 1-based passage number
    text: str
    score: float
    covered: frozenset[int]
    order: tuple[int, int]  # (passage number, sentence position) for stable ordering
    previous: str | None = None  # the sentence before it in the same passage
    own: float = 0.0  # share of question terms in the sentence itself


def _candidates(analysis: QuestionAnalysis, passages: tuple[Passage, ...]) -> list[Candidate]:
    seen: set[tuple[str, int]] = set()
    out: list[Candidate] = []
    for n, p in enumerate(passages, 1):
        text = p.chunk.text
        context = f"{p.chunk.context}\n{text}"
        prev: str | None = None
        for pos, (a, b) in enumerate(split_sentences(text)):
            key = (p.article_id, p.chunk.start + a)
            sent = text[a:b].strip()
            if key in seen or len(sent) < 4:
                prev = sent or prev
                continue
            seen.add(key)
            if is_instruction(sent):
                prev = sent
                continue  # text addressed to an AI is not evidence about the news
            cov, hit = coverage(analysis, sent, context)
            if not type_fits(analysis.answer_type, sent):
                cov *= TYPE_MISS_FACTOR
            own = len(hit) / len(analysis.terms) if analysis.terms else 0.0
            score = cov + RANK_PRIOR / n + OWN_TERMS_BONUS * own
            out.append(Candidate(n, sent, score, frozenset(hit), (n, pos), prev, own))
            prev = sent
    out.sort(key=lambda c: (-c.score, c.order))
    return out


def _coverage_of(c: Candidate) -> float:
    """A candidate's coverage without the tie-breaking bonuses."""
    return c.score - RANK_PRIOR / c.n - OWN_TERMS_BONUS * c.own


def _best(analysis: QuestionAnalysis, passages: tuple[Passage, ...]) -> tuple[list[Candidate], list[Candidate]]:
    cands = _candidates(analysis, passages)
    if not cands or _coverage_of(cands[0]) < MIN_COVERAGE:
        return [], cands
    return [cands[0]], cands


def select_evidence(analyses: list[QuestionAnalysis], passages: tuple[Passage, ...]) -> list[Candidate]:
    """The sentence(s) to quote, in reading order; empty when none answers the question.

    A compound question (several analyses) gets the best sentence for each part it can
    answer; a simple one may get a second sentence covering what the first lacks.
    """
    if len(analyses) > 1:
        picked: dict[tuple[int, int], Candidate] = {}
        for a in analyses:
            for c in _best(a, passages)[0]:
                picked.setdefault(c.order, c)
        return sorted(picked.values(), key=lambda c: c.order)
    analysis = analyses[0]
    chosen, cands = _best(analysis, passages)
    if not chosen:
        return []
    best = chosen[0]
    weights = [t.weight for t in analysis.terms]
    total = sum(weights) or 1.0
    uncovered = set(range(len(weights))) - best.covered
    if uncovered:
        gains = [
            (sum(weights[i] for i in c.covered & uncovered) / total, c)
            for c in cands[1:]
            if c.covered & uncovered and _coverage_of(c) >= SECOND_MIN_COVERAGE
        ]
        if gains:
            gain, second = max(gains, key=lambda g: (g[0], g[1].score))
            if gain >= MIN_GAIN:
                chosen.append(second)
    return sorted(chosen, key=lambda c: c.order)


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

    def __init__(self, index: Index) -> None:
        self.index = index
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

    def evidence(self, question: str, lang: Lang, passages: tuple[Passage, ...]) -> list[tuple[int, str]]:
        """(passage number, sentence) pairs to quote, in reading order; [] when unanswerable."""
        analyses = [self.analyze(part, lang) for part in split_question(question)]
        out: list[tuple[int, str]] = []
        for c in select_evidence(analyses, passages):
            if c.previous and _NEEDS_ANTECEDENT.match(c.text) and (c.n, c.previous) not in out:
                out.append((c.n, c.previous))
            if (c.n, c.text) not in out:
                out.append((c.n, c.text))
        return out

    def generate(self, request: GenerationRequest) -> Draft:
        return self.compose(request, self.evidence(request.question, request.lang, request.passages))

    def compose(self, request: GenerationRequest, chosen: list[tuple[int, str]]) -> Draft:
        """The answer text quoting ``chosen`` (from ``evidence``); a refusal when it is empty."""
        if not chosen:
            return Draft(text="", refused=True)
        glossary = self.index.glossary
        first = request.passages[chosen[0][0] - 1]
        if request.lang == "zh":
            body = "".join(f"{text}[{n}]" for n, text in chosen)
            return Draft(text=f"{_frame('zh', first, glossary)}{body}")
        quotes = " ".join(f"“{text}” [{n}]" for n, text in chosen)
        glosses = _glosses([text for _, text in chosen], glossary)
        text = f"{_frame('en', first, glossary)} {quotes}"
        return Draft(text=f"{text}\n{glosses}" if glosses else text)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        draft = self.generate(request)
        # Stream in small pieces so clients render progressively, like an LLM would.
        step = 8
        for i in range(0, len(draft.text), step):
            yield draft.text[i : i + step]
