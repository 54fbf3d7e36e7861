"""Evaluation metrics: small pure functions, one question at a time, then :func:`aggregate`.

Definitions (the report keys of DESIGN.md, plus a few extras):

``answer_accuracy``
    Answerable questions whose answer is not a refusal and contains every ``must_include``
    item (a nested list: any one alternative), compared after :func:`fold` (case and
    width: full-width digits/letters/punctuation count as ASCII, ``∶`` as ``:``),
    whitespace runs collapsed to one space, and ``[n]`` citation markers removed (so the
    marker ``[11]`` never satisfies "11").
``short_answer_accuracy`` (extra)
    The same test on the *short answer* only (:func:`short_answer_text`): the Answer's
    ``short_answer`` when the engine set one, else the first non-blank line of its text.
    A cheap check that the fact itself is up front, not just somewhere in a long quote;
    the denominator is again all answerable questions (a refusal or error is wrong).
``refusal_accuracy`` / ``false_refusal_rate``
    Share of unanswerable questions whose Answer has ``refused: true`` / share of
    answerable questions whose Answer has ``refused: true``. Refusal is read from the flag
    only, never from the text.
``retrieval_hit_at_5`` / ``mrr``
    Questions with gold ``sources``: a gold article among the top 5 retrieved chunks'
    articles / the mean of 1 / (rank of the first chunk from a gold article), 0 when none is
    in the ranking (depth 10).
``passage_hit_at_5`` / ``passage_mrr`` / ``evidence_recall_at_5`` (extras)
    Questions with ``evidence``: one of the top 5 retrieved chunk *texts* contains one of
    the evidence strings verbatim / 1 / rank of the first such chunk / the share of the
    evidence strings found in the top 5 chunks (multi-hop questions need all of them).
``citation_precision``
    Pooled over all citations of answers to answerable questions: the share whose
    ``article_id`` is a gold source. (Citations on unanswerable questions are already
    counted as failures by ``refusal_accuracy``.)
``citation_valid_rate``
    Pooled over all citations of all answers: the share whose ``quote`` equals
    ``body[start:end]`` of the cited article (an unknown article is invalid).
``language_match``
    Answers (refusals included) written in the question's language, by
    :func:`answer_language`: count the letters of the whole answer text, with only the
    ``[n]`` markers removed (quotes, quoted spans and copied terms all count: the reader
    reads them), as CJK ideographs vs Latin letters; the answer is Chinese (``zh``) when
    CJK ideographs are more than 30% of all letters, else English (``en``). One ideograph
    carries about as much as a short English word, hence a threshold well below half: a
    Chinese sentence with a few English names stays ``zh``, an English sentence with a
    Chinese name or two stays ``en``, and an English frame around a long Chinese quote is
    ``zh`` (the reader gets mostly Chinese). An answer with no letters at all (a number, a
    date, a ratio such as "6∶4 [1]") reads the same in either language, so it has no
    language (``None``) and matches whatever the question's language is.
``latency_ms_p50`` / ``latency_ms_p95``
    Percentiles (linear interpolation between the closest ranks) of the Answer's own
    ``timings_ms.total``.

A question that raised an error counts as wrong for the accuracy, refusal and retrieval
metrics (nothing was answered or retrieved) and is left out of the citation, language and
latency ones (there is no answer to measure); ``errors`` counts them. A metric with no
eligible question in a group is ``None`` (JSON ``null``), never 0.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..citations import MARKER_RE, quote_is_valid
from ..types import Answer, Citation, Lang

#: The report keys of the DESIGN.md contract, in report order.
CONTRACT_KEYS: tuple[str, ...] = (
    "n",
    "answer_accuracy",
    "refusal_accuracy",
    "false_refusal_rate",
    "retrieval_hit_at_5",
    "mrr",
    "citation_precision",
    "citation_valid_rate",
    "language_match",
    "latency_ms_p50",
    "latency_ms_p95",
)
#: Extra keys the harness adds next to the contract ones.
EXTRA_KEYS: tuple[str, ...] = ("short_answer_accuracy", "passage_hit_at_5", "passage_mrr", "evidence_recall_at_5", "errors")
HIT_K = 5
RANKING_DEPTH = 10

_RATIO_COLON = "\u2236"  # ∶ in 6∶4; NFKC leaves it alone
_SPACES = re.compile(r"\s+")
#: CJK unified ideographs (basic, extension A, compatibility, extension B).
_CJK_LETTER = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")
#: Latin letters, ASCII and accented (Latin-1 and Latin Extended-A/B, without × and ÷).
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")
#: An answer is 'zh' when CJK ideographs are *more than* this share of its letters.
ZH_LETTER_SHARE = 0.3


# --------------------------------------------------------------------------- answer text

def fold(text: str) -> str:
    """Case- and width-folded text: ``６∶４`` -> ``6:4``, ``ＡＢＣ`` -> ``abc``, ``，`` -> ``,``."""
    return unicodedata.normalize("NFKC", text).replace(_RATIO_COLON, ":").casefold()


def _comparable(text: str) -> str:
    """Folded text with markers and all whitespace removed: the datasets' matching rule
    ("case-insensitive after NFKC normalisation with spaces removed"), so "136 次" matches "136次"."""
    return _SPACES.sub("", fold(MARKER_RE.sub(" ", text)))


def alternatives(item: str | Sequence[str]) -> tuple[str, ...]:
    """A ``must_include`` item as its alternatives (a plain string is its only one)."""
    return (item,) if isinstance(item, str) else tuple(item)


def missing_items(answer_text: str, must_include: Sequence[str | Sequence[str]]) -> list[tuple[str, ...]]:
    """The ``must_include`` items (as alternatives) that ``answer_text`` lacks."""
    text = _comparable(answer_text)
    return [alts for alts in map(alternatives, must_include) if not any(_comparable(a) in text for a in alts)]


def satisfies_must_include(answer_text: str, must_include: Sequence[str | Sequence[str]]) -> bool:
    """Every item appears in the answer (a nested list: one of its alternatives suffices)."""
    return not missing_items(answer_text, must_include)


def answer_is_correct(answer: Answer, must_include: Sequence[str | Sequence[str]]) -> bool:
    """For an answerable question: answered (not refused) and satisfying ``must_include``."""
    return not answer.refused and satisfies_must_include(answer.answer, must_include)


def refusal_is_correct(answer: Answer, answerable: bool) -> bool:
    """Refused exactly when the question is unanswerable (read from the ``refused`` flag)."""
    return answer.refused != answerable


def short_answer_text(answer: Answer) -> str:
    """The short answer: ``answer.short_answer`` when set (non-blank), else the text's first non-blank line.

    Engines without a short-answer extractor still get a fair reading: their first line is
    where a reader looks for the fact.
    """
    if answer.short_answer is not None and answer.short_answer.strip():
        return answer.short_answer
    return next((line for line in answer.answer.splitlines() if line.strip()), "")


def short_answer_is_correct(answer: Answer, must_include: Sequence[str | Sequence[str]]) -> bool:
    """For an answerable question: answered (not refused) and its short answer satisfies ``must_include``."""
    return not answer.refused and satisfies_must_include(short_answer_text(answer), must_include)


def letter_counts(text: str) -> tuple[int, int]:
    """(CJK ideographs, Latin letters) in ``text`` after NFKC (full-width ``Ａ`` is Latin), ``[n]`` markers removed."""
    plain = unicodedata.normalize("NFKC", MARKER_RE.sub(" ", text))
    return len(_CJK_LETTER.findall(plain)), len(_LATIN_LETTER.findall(plain))


def answer_language(answer_text: str) -> Lang | None:
    """'zh', 'en', or None for an answer without letters (the rule: module docstring, ``language_match``)."""
    cjk, latin = letter_counts(answer_text)
    if cjk + latin == 0:
        return None
    return "zh" if cjk > ZH_LETTER_SHARE * (cjk + latin) else "en"


def language_match(answer_text: str, expected: str) -> bool:
    """The answer is in the ``expected`` language; a letterless answer matches either."""
    detected = answer_language(answer_text)
    return detected is None or detected == expected


# --------------------------------------------------------------------------- citations

def gold_citation_count(citations: Sequence[Citation], sources: Iterable[str]) -> int:
    gold = set(sources)
    return sum(c.article_id in gold for c in citations)


def citation_precision(citations: Sequence[Citation], sources: Iterable[str]) -> float | None:
    """Share of citations whose article is a gold source; None without citations."""
    return gold_citation_count(citations, sources) / len(citations) if citations else None


def valid_citation_count(citations: Sequence[Citation], body_of: Callable[[str], str | None]) -> int:
    count = 0
    for c in citations:
        body = body_of(c.article_id)
        count += body is not None and quote_is_valid(c, body)
    return count


def citation_valid_rate(citations: Sequence[Citation], body_of: Callable[[str], str | None]) -> float | None:
    """Share of citations with ``quote == body[start:end]``; ``body_of`` maps article id -> body."""
    return valid_citation_count(citations, body_of) / len(citations) if citations else None


# --------------------------------------------------------------------------- retrieval

def first_rank(ranked_article_ids: Sequence[str], sources: Iterable[str]) -> int | None:
    """1-based rank of the first retrieved chunk from a gold article, None if none."""
    gold = set(sources)
    return next((i for i, a in enumerate(ranked_article_ids, 1) if a in gold), None)


def hit_at_k(ranked_article_ids: Sequence[str], sources: Iterable[str], k: int) -> bool:
    rank = first_rank(ranked_article_ids, sources)
    return rank is not None and rank <= k


def reciprocal_rank(ranked_article_ids: Sequence[str], sources: Iterable[str]) -> float:
    rank = first_rank(ranked_article_ids, sources)
    return 1.0 / rank if rank else 0.0


def passage_first_rank(ranked_texts: Sequence[str], evidence: Sequence[str]) -> int | None:
    """1-based rank of the first retrieved chunk text that contains an evidence string verbatim."""
    return next((i for i, t in enumerate(ranked_texts, 1) if any(e in t for e in evidence)), None)


def passage_hit_at_k(ranked_texts: Sequence[str], evidence: Sequence[str], k: int) -> bool:
    rank = passage_first_rank(ranked_texts, evidence)
    return rank is not None and rank <= k


def passage_reciprocal_rank(ranked_texts: Sequence[str], evidence: Sequence[str]) -> float:
    rank = passage_first_rank(ranked_texts, evidence)
    return 1.0 / rank if rank else 0.0


def evidence_recall_at_k(ranked_texts: Sequence[str], evidence: Sequence[str], k: int) -> float | None:
    """Share of evidence strings found in the top-k chunk texts; None without evidence."""
    if not evidence:
        return None
    top = ranked_texts[:k]
    return sum(any(e in t for t in top) for e in evidence) / len(evidence)


# --------------------------------------------------------------------------- statistics

def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


# --------------------------------------------------------------------------- one question

@dataclass(frozen=True)
class RankedChunk:
    """One entry of a retrieval ranking, as the metrics need it."""

    article_id: str
    text: str


@dataclass(frozen=True)
class QuestionScore:
    """Everything the report needs about one question; ``None`` = not applicable."""

    id: str
    lang: str
    type: str
    answerable: bool
    error: str | None = None
    refused: bool | None = None
    correct: bool | None = None  # answerable only: answered and satisfying must_include
    short_correct: bool | None = None  # answerable only: the short answer satisfies must_include
    refusal_correct: bool | None = None  # unanswerable only
    has_sources: bool = False
    article_rank: int | None = None  # first gold-article chunk in the ranking (1-based)
    has_evidence: bool = False
    passage_rank: int | None = None  # first chunk containing an evidence string
    evidence_recall_at_5: float | None = None
    n_citations: int = 0
    n_gold_citations: int = 0
    n_valid_citations: int = 0
    language: str | None = None  # detected language of the answer (None: no answer, or no letters)
    language_ok: bool | None = None
    latency_ms: float | None = None


def score_question(
    *,
    qid: str,
    lang: str,
    qtype: str,
    answerable: bool,
    must_include: Sequence[str | Sequence[str]],
    sources: Sequence[str],
    evidence: Sequence[str] | None,
    answer: Answer | None,
    ranking: Sequence[RankedChunk],
    body_of: Callable[[str], str | None],
    error: str | None = None,
) -> QuestionScore:
    """Score one question from its Answer (None when asking raised ``error``) and its ranking."""
    articles = [r.article_id for r in ranking]
    texts = [r.text for r in ranking]
    has_evidence = bool(evidence)
    retrieval: dict[str, Any] = {
        "has_sources": bool(sources),
        "article_rank": first_rank(articles, sources) if sources else None,
        "has_evidence": has_evidence,
        "passage_rank": passage_first_rank(texts, evidence) if evidence else None,
        "evidence_recall_at_5": evidence_recall_at_k(texts, evidence, HIT_K) if evidence else None,
    }
    if answer is None:
        return QuestionScore(
            id=qid, lang=lang, type=qtype, answerable=answerable, error=error or "no answer",
            correct=False if answerable else None, short_correct=False if answerable else None,
            refusal_correct=None if answerable else False, **retrieval,
        )
    detected = answer_language(answer.answer)
    return QuestionScore(
        id=qid,
        lang=lang,
        type=qtype,
        answerable=answerable,
        error=error,
        refused=answer.refused,
        correct=answer_is_correct(answer, must_include) if answerable else None,
        short_correct=short_answer_is_correct(answer, must_include) if answerable else None,
        refusal_correct=None if answerable else refusal_is_correct(answer, answerable),
        n_citations=len(answer.citations),
        n_gold_citations=gold_citation_count(answer.citations, sources),
        n_valid_citations=valid_citation_count(answer.citations, body_of),
        language=detected,
        language_ok=language_match(answer.answer, lang),
        latency_ms=answer.timings_ms.get("total"),
        **retrieval,
    )


# --------------------------------------------------------------------------- aggregation

def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summarize(rows: Sequence[QuestionScore]) -> dict[str, Any]:
    """The report keys for one group of questions (no breakdowns)."""
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    with_sources = [r for r in rows if r.has_sources]
    with_evidence = [r for r in rows if r.has_evidence]
    answered = [r for r in rows if r.error is None]
    cited_answerable = [r for r in answerable if r.error is None]
    latencies = [r.latency_ms for r in answered if r.latency_ms is not None]
    return {
        "n": len(rows),
        "answer_accuracy": _round(share([bool(r.correct) for r in answerable])),
        "short_answer_accuracy": _round(share([bool(r.short_correct) for r in answerable])),
        "refusal_accuracy": _round(share([bool(r.refusal_correct) for r in unanswerable])),
        "false_refusal_rate": _round(share([bool(r.refused) for r in answerable])),
        "retrieval_hit_at_5": _round(share([r.article_rank is not None and r.article_rank <= HIT_K for r in with_sources])),
        "mrr": _round(mean([1.0 / r.article_rank if r.article_rank else 0.0 for r in with_sources])),
        "citation_precision": _round(_ratio(sum(r.n_gold_citations for r in cited_answerable),
                                            sum(r.n_citations for r in cited_answerable))),
        "citation_valid_rate": _round(_ratio(sum(r.n_valid_citations for r in answered),
                                             sum(r.n_citations for r in answered))),
        "language_match": _round(share([bool(r.language_ok) for r in answered])),
        "latency_ms_p50": _round(percentile(latencies, 50), 1),
        "latency_ms_p95": _round(percentile(latencies, 95), 1),
        "passage_hit_at_5": _round(share([r.passage_rank is not None and r.passage_rank <= HIT_K for r in with_evidence])),
        "passage_mrr": _round(mean([1.0 / r.passage_rank if r.passage_rank else 0.0 for r in with_evidence])),
        "evidence_recall_at_5": _round(mean([r.evidence_recall_at_5 or 0.0 for r in with_evidence])),
        "errors": sum(r.error is not None for r in rows),
    }


def _groups(rows: Sequence[QuestionScore], key: Callable[[QuestionScore], str], order: Sequence[str]) -> dict[str, Any]:
    present = {key(r) for r in rows}
    names = [k for k in order if k in present] + sorted(present - set(order))
    return {name: summarize([r for r in rows if key(r) == name]) for name in names}


def aggregate(rows: Sequence[QuestionScore]) -> dict[str, Any]:
    """Report keys overall, and the same keys under ``by_lang`` and ``by_type``."""
    return {
        **summarize(rows),
        "by_lang": _groups(rows, lambda r: r.lang, ("zh", "en")),
        "by_type": _groups(rows, lambda r: r.type, ("factoid", "multi_hop", "unanswerable", "followup")),
    }


def hit_curve(rows: Sequence[QuestionScore], level: str, max_k: int = RANKING_DEPTH) -> list[float | None]:
    """hit@k for k = 1..max_k; ``level`` 'article' (gold sources) or 'passage' (evidence)."""
    if level == "article":
        ranks = [r.article_rank for r in rows if r.has_sources]
    elif level == "passage":
        ranks = [r.passage_rank for r in rows if r.has_evidence]
    else:
        raise ValueError(f"level must be 'article' or 'passage', got {level!r}")
    return [_round(share([rank is not None and rank <= k for rank in ranks])) for k in range(1, max_k + 1)]
