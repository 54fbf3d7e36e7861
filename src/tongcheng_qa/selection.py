"""Evidence selection: which sentence of the retrieved passages answers the question, and how sure.

Every sentence of the passages is a candidate. It is described by general signals, none of
them about a particular corpus or question:

- cross-lingual similarity of question and sentence (e5 sentence vectors),
- lexical coverage of the question's IDF-weighted terms, in the sentence alone and with its
  passage context (title, heading),
- the rarest question term (the question's most specific name) found or not,
- answer-type fit (a number for 多少 / how many, a date for 何时 / when ...),
- agreement of the question's numbers with the sentence,
- retrieval rank and dense score of its passage,
- each signal relative to the best candidate of the same question (how far from the top).

Similarities enter only standardised among the question's candidates, so the model does not
depend on one embedding model's cosine scale (e5's cosines crowd into 0.75-0.95).

A logistic model fitted on development data (``eval/fit_selector.py``: XQuAD zh/en, CMRC
2018, CRUD-RAG news QA and the team's gold set) turns them into the probability that the
sentence holds the answer; its parameters ship as ``resources/selector.json`` with the
refusal threshold picked by the same script. Nothing here is hand-weighted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .analysis import (
    CONTEXT_CREDIT,
    QuestionAnalysis,
    fold,
    folded_coverage,
    term_credit,
    type_fits,
)
from .chunking import split_sentences
from .injection import is_instruction
from .sentence_vectors import MIN_SENTENCE_CHARS
from .spans import asked_unit, has_count_in
from .types import Passage

#: Feature names, in the order of the fitted coefficients.
FEATURES: tuple[str, ...] = (
    "cov",  # coverage of the question's weighted terms (context at reduced credit)
    "own",  # coverage by the sentence alone
    "cov_gap",  # cov minus the best cov among this question's candidates (<= 0)
    "sim_z",  # e5 cosine question ~ sentence, standardised among this question's candidates
    "sim_top",  # the sentence is the most similar one
    "top_term",  # credit of the question's highest-weight term
    "type_fit",  # the question asks for a number, date or ratio and the sentence has one
    "type_miss",  # ... and the sentence lacks it
    "kind_fit",  # the question asks for a person, name or post and the sentence looks like one
    "kind_miss",  # ... and the sentence lacks it
    "num_agree",  # share of the question's numbers in the sentence or its context
    "rank_inv",  # 1 / passage rank
    "dense_z",  # the passage's dense cosine, standardised among the candidates (BM25-only: the lowest)
    "len_log",  # log sentence length
    "en",  # the question is English (the sentences are Chinese)
    "en_sim_z",  # similarity counts differently across languages
    "unmatched",  # share of question weight no candidate matches at all
    "grams",  # IDF-weighted share of the question's character bigrams / words in the sentence
    "grams_gap",  # grams minus the best grams
    "prev_own",  # coverage by the sentence before it (the question may be matched next door)
    "next_own",  # coverage by the sentence after it
    "prev_grams",
    "next_grams",
    "local_terms",  # question terms weighted by how rare they are among these candidates:
    "local_grams",  # the topic every sentence repeats counts little, the asked attribute much
    "local_terms_gap",
    "local_grams_gap",
    "unit_fit",  # the question counts in a unit (几家, 多少亿元) and the sentence has a number in it
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
#: Answer types whose content is unmistakable in text (digits, dates, proportions); the others
#: (person, name, post) are recognised by looser cues, so the model weighs them apart.
_STRICT_KINDS = frozenset(("number", "date", "ratio"))
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_LATIN = re.compile(r"[a-z]{3,}|\d+(?:\.\d+)?")


def question_grams(question: str) -> list[str]:
    """The question's character bigrams (Chinese) and words/numbers (Latin), folded, unique:
    a segmentation-free view of its wording that survives 入驻企业 ~ 企业入驻 reorderings."""
    q = fold(question)
    grams = [run[i : i + 2] for run in _CJK_RUN.findall(q) for i in range(max(len(run) - 1, 1))]
    grams += _LATIN.findall(q)
    return list(dict.fromkeys(grams))


def gram_share(grams: Sequence[str], weights: Sequence[float], folded_sentence: str) -> float:
    total = sum(weights)
    if total <= 0:
        return 0.0
    return sum(w for g, w in zip(grams, weights, strict=True) if g in folded_sentence) / total
_MODEL_FILE = "selector.json"


class SentenceSimilarity(Protocol):
    def similarities(self, question: str, sentences: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Candidate:
    n: int  # 1-based passage number
    text: str
    order: tuple[int, int]  # (passage number, sentence position) for stable ordering
    previous: str | None  # the sentence before it in the same passage
    features: tuple[float, ...]
    p: float = 0.0  # fitted probability that the sentence holds the answer


#: The answer gate sees the best candidate's features and how sure the ranker is of it.
GATE_FEATURES: tuple[str, ...] = (*FEATURES, "best_logit", "margin", "n_log")


def gate_features(best: Sequence[float], best_p: float, second_p: float, n_candidates: int) -> np.ndarray:
    """The answer gate's inputs for one question part (the script that fits it uses this too)."""
    p = min(max(best_p, 1e-6), 1 - 1e-6)
    return np.asarray([*best, math.log(p / (1 - p)), best_p - second_p, math.log(1 + n_candidates)])


@dataclass(frozen=True)
class Linear:
    """A standardised linear model: p = sigmoid(((x - mean) / scale) . coef + intercept)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return np.zeros(0)
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    def to_json(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "scale": list(self.scale), "coef": list(self.coef), "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Linear:
        return cls(tuple(data["mean"]), tuple(data["scale"]), tuple(data["coef"]), float(data["intercept"]))


@dataclass(frozen=True)
class SelectorModel:
    """The fitted parts for one question language.

    ``ranker``: the probability that a sentence holds the answer (a pairwise ranker, Platt
    scaled). ``gate``: the probability that the question part is answerable at all, from its
    best sentence. A part is answered when the gate reaches ``threshold``; runners-up whose
    probability is at least ``alpha`` times the best one's are quoted too.
    """

    ranker: Linear
    gate: Linear
    threshold: float
    alpha: float = 1.0

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self.ranker.probabilities(x)

    def answerable(self, cands: Sequence[Candidate]) -> float:
        """The gate's probability that the best of ``cands`` (best first) answers its part."""
        if not cands:
            return 0.0
        second = cands[1].p if len(cands) > 1 else 0.0
        g = gate_features(cands[0].features, cands[0].p, second, len(cands))
        return float(self.gate.probabilities(g[None, :])[0])

    def to_json(self) -> dict[str, Any]:
        return {"ranker": self.ranker.to_json(), "gate": self.gate.to_json(), "threshold": self.threshold,
                "alpha": self.alpha}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SelectorModel:
        return cls(Linear.from_json(data["ranker"]), Linear.from_json(data["gate"]), float(data["threshold"]),
                   float(data.get("alpha", 1.0)))


@dataclass(frozen=True)
class Selector:
    """One fitted model per question language: Chinese questions over Chinese text lean on
    the wording, English ones on cross-lingual similarity, so their weights differ."""

    models: dict[str, SelectorModel]
    meta: dict[str, Any] = field(default_factory=dict)  # what it was fitted on (for reports)

    def for_lang(self, lang: str) -> SelectorModel:
        return self.models.get(lang) or self.models["zh"]

    def to_json(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "models": {k: m.to_json() for k, m in self.models.items()},
                "meta": self.meta}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Selector:
        feats = tuple(data["features"])
        if feats != FEATURES:
            raise ValueError(f"the selector was fitted on features {feats}, the code computes {FEATURES}: "
                             "refit it with `python eval/fit_selector.py all`")
        return cls({k: SelectorModel.from_json(v) for k, v in data["models"].items()}, data.get("meta") or {})

    @classmethod
    def load(cls, path: Path | None = None) -> Selector:
        if path is None:
            return default_selector()
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


@cache
def default_selector() -> Selector:
    """The selector shipped in ``resources/selector.json`` (written by ``eval/fit_selector.py``)."""
    text = resources.files("tongcheng_qa.resources").joinpath(_MODEL_FILE).read_text(encoding="utf-8")
    return Selector.from_json(json.loads(text))


@dataclass(frozen=True)
class _Raw:
    n: int
    text: str
    context: str
    order: tuple[int, int]
    previous: str | None
    passage: Passage


def _raw_candidates(passages: Sequence[Passage]) -> list[_Raw]:
    seen: set[tuple[str, int]] = set()
    out: list[_Raw] = []
    for n, p in enumerate(passages, 1):
        text = p.chunk.text
        context = f"{p.chunk.context}\n{text}"
        prev: str | None = None
        for pos, (a, b) in enumerate(split_sentences(text)):
            key = (p.article_id, p.chunk.start + a)
            sent = text[a:b].strip()
            if key in seen or len(sent) < MIN_SENTENCE_CHARS or is_instruction(sent):
                # a repeat (chunk overlap), a scrap, or text addressed to an AI: not evidence
                prev = sent or prev
                continue
            seen.add(key)
            out.append(_Raw(n, sent, context, (n, pos), prev, p))
            prev = sent
    return out


def _row(**values: float) -> list[float]:
    """A feature row in ``FEATURES`` order; the features relative to the other candidates
    (gaps, standardised scores, neighbours) start at 0 and are filled in afterwards."""
    unknown = set(values) - set(FEATURES)
    if unknown:
        raise KeyError(f"not selector features: {sorted(unknown)}")
    return [values.get(name, 0.0) for name in FEATURES]


def _standardised(v: np.ndarray) -> np.ndarray:
    sd = v.std() if v.size else 0.0
    return (v - v.mean()) / sd if sd > 1e-9 else np.zeros_like(v)


def _untranslated_share(analysis: QuestionAnalysis, folded_all: str) -> float:
    total = analysis.total_weight
    if total <= 0:
        return 1.0
    missing = sum(t.weight for t in analysis.terms if term_credit(t, folded_all) == 0.0)
    return missing / total


def candidates(
    analysis: QuestionAnalysis,
    question: str,
    passages: Sequence[Passage],
    similarity: SentenceSimilarity | None,
    model: SelectorModel,
    idf: Callable[[str], float] | None = None,
) -> list[Candidate]:
    """Every candidate sentence with its features and fitted probability, best first.

    ``idf`` weighs the question's bigrams (the engine passes the index's IDF; without it
    every bigram counts the same)."""
    raws = _raw_candidates(passages)
    if not raws:
        return []
    sims = (similarity.similarities(question, [r.text for r in raws]) if similarity is not None
            else np.zeros(len(raws)))
    q_numbers = set(_NUMBER.findall(fold(question)))
    top = max(analysis.terms, key=lambda t: t.weight) if analysis.terms else None
    en = 1.0 if analysis.lang == "en" else 0.0
    unmatched = _untranslated_share(analysis, "\n".join(fold(r.text) for r in raws))
    unit = asked_unit(question)
    grams = question_grams(question)
    gram_w = [idf(g) if idf else 1.0 for g in grams]
    rows: list[list[float]] = []
    folded_ctx: dict[int, tuple[str, set[str]]] = {}  # per passage: folded context, its numbers
    folded_texts: list[str] = []
    for r in raws:
        if r.n not in folded_ctx:
            f = fold(r.context)
            folded_ctx[r.n] = (f, set(_NUMBER.findall(f)))
        ctx, ctx_numbers = folded_ctx[r.n]
        folded = fold(r.text)
        folded_texts.append(folded)
        cov, _ = folded_coverage(analysis, folded, ctx)
        own, _ = folded_coverage(analysis, folded)
        top_credit = 0.0
        if top is not None:
            top_credit = max(term_credit(top, folded), CONTEXT_CREDIT * term_credit(top, ctx))
        kind = analysis.answer_type
        fits = type_fits(kind, r.text) if kind != "other" else False
        strict = kind in _STRICT_KINDS
        if q_numbers:
            num_agree = len(q_numbers & ctx_numbers) / len(q_numbers)
        else:
            num_agree = 1.0
        rows.append(_row(
            cov=cov, own=own, top_term=top_credit,
            type_fit=float(strict and fits), type_miss=float(strict and not fits),
            kind_fit=float(kind != "other" and not strict and fits),
            kind_miss=float(kind != "other" and not strict and not fits),
            num_agree=num_agree, rank_inv=1.0 / r.n, len_log=math.log(1 + len(r.text)), en=en,
            unmatched=unmatched, grams=gram_share(grams, gram_w, folded),
            unit_fit=1.0 if unit and has_count_in(r.text, unit) else 0.0,
        ))
    x = np.asarray(rows, dtype=np.float64)
    i_cov = FEATURES.index("cov")
    x[:, FEATURES.index("cov_gap")] = x[:, i_cov] - x[:, i_cov].max()
    sim_z = _standardised(np.asarray(sims, dtype=np.float64))
    x[:, FEATURES.index("sim_z")] = sim_z
    x[:, FEATURES.index("sim_top")] = (sim_z >= sim_z.max()).astype(np.float64)
    x[:, FEATURES.index("en_sim_z")] = en * sim_z
    dense = np.asarray([r.passage.dense_score for r in raws if r.passage.dense_score is not None])
    floor = dense.min() if dense.size else 0.0  # a passage only BM25 found ranks with the least similar
    x[:, FEATURES.index("dense_z")] = _standardised(np.asarray(
        [r.passage.dense_score if r.passage.dense_score is not None else floor for r in raws], dtype=np.float64))
    _local_features(x, analysis, grams, folded_texts)
    i_grams = FEATURES.index("grams")
    x[:, FEATURES.index("grams_gap")] = x[:, i_grams] - x[:, i_grams].max()
    at = {r.order: i for i, r in enumerate(raws)}
    i_own = FEATURES.index("own")
    for i, r in enumerate(raws):
        for side, step in (("prev", -1), ("next", 1)):
            j = at.get((r.order[0], r.order[1] + step))
            if j is not None:
                x[i, FEATURES.index(f"{side}_own")] = x[j, i_own]
                x[i, FEATURES.index(f"{side}_grams")] = x[j, i_grams]
    probs = model.probabilities(x)
    out = [
        Candidate(r.n, r.text, r.order, r.previous, tuple(float(v) for v in row), float(p))
        for r, row, p in zip(raws, x, probs, strict=True)
    ]
    out.sort(key=lambda c: (-c.p, c.order))
    return out


def _local_share(present: np.ndarray) -> np.ndarray:
    """Per sentence: share of the items it holds, each weighted by its rarity among the
    candidates (log((N+1)/(df+0.5))); items no candidate holds say nothing and are left out."""
    n = present.shape[0]
    if present.size == 0:
        return np.zeros(n)
    df = present.sum(axis=0)
    w = np.where(df > 0, np.log((n + 1) / (df + 0.5)), 0.0)
    total = w.sum()
    return present @ w / total if total > 0 else np.zeros(n)


def _local_features(x: np.ndarray, analysis: QuestionAnalysis, grams: Sequence[str], folded: Sequence[str]) -> None:
    terms = np.asarray([[min(term_credit(t, f), 1.0) for t in analysis.terms] for f in folded], dtype=np.float64)
    bigrams = np.asarray([[1.0 if g in f else 0.0 for g in grams] for f in folded], dtype=np.float64)
    for name, present in (("local_terms", terms), ("local_grams", bigrams)):
        col = _local_share(present.reshape(len(folded), -1))
        x[:, FEATURES.index(name)] = col
        x[:, FEATURES.index(f"{name}_gap")] = col - col.max()


@dataclass(frozen=True)
class Selection:
    """The chosen sentences (each part's best first), and the question parts no sentence answers."""

    chosen: tuple[Candidate, ...]
    unanswered_parts: tuple[str, ...] = ()
    #: the top sentence of each answered part, in part order
    best: tuple[Candidate, ...] = ()


#: At most this many sentences answer one question part.
MAX_PER_PART = 3


def runners_up(cands: Sequence[Candidate], alpha: float, limit: int = MAX_PER_PART) -> list[Candidate]:
    """The best candidate and those whose probability is within ``alpha`` of it, best first."""
    if not cands:
        return []
    floor = alpha * cands[0].p
    return [cands[0], *[c for c in cands[1:limit] if c.p >= floor]]


def select(
    parts: Sequence[tuple[str, QuestionAnalysis]],
    score: Callable[[str, QuestionAnalysis], list[Candidate]],
    model: SelectorModel,
) -> Selection:
    """For each question part the fitted answer gate lets through: its best sentence, and
    the runners-up within the fitted ``alpha`` of it. Quoted best first. ``score`` gives a
    part's candidates, best first (:func:`candidates` over the passages)."""
    picked: dict[tuple[int, int], Candidate] = {}
    tops: list[Candidate] = []
    missing: list[str] = []
    for text, analysis in parts:
        cands = score(text, analysis)
        if not cands:
            missing.append(text)
            continue
        if model.answerable(cands) < model.threshold:
            missing.append(text)
            continue
        for c in runners_up(cands, model.alpha):
            picked.setdefault(c.order, c)
        tops.append(cands[0])
    chosen = tuple(picked.values())
    return Selection(chosen, tuple(missing) if chosen else tuple(p for p, _ in parts), tuple(tops))
