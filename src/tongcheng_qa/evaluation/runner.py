"""Run an evaluation: index a corpus in an isolated data dir, ask every question, score, report.

One :class:`~tongcheng_qa.assistant.Assistant` (the class the API uses) answers every
question with its ``history``. For the retrieval metrics the harness also asks the same
knowledge base for the ranking of the answer's standalone question down to
``RANKING_DEPTH`` (hit@k curves need more than the passages the engine gets); its first
entries are the Answer's own ``retrieved`` list, which the run checks (``ranking_mismatches``).

The index lives in a temporary folder, or, with ``index_dir``, in a kept folder that the
next run reuses (ingest is incremental, so an unchanged corpus embeds nothing: the big
datasets take minutes to embed). A stamp file there records the chunking/embedding
settings ingest cannot detect, and a mismatch is an error rather than a stale index.

Ablations (retrieval mode, answer engine, follow-up rewriting) reuse the one index and
change only retrieval/answer settings; the baseline (:mod:`.baseline`) gets its own
LangChain Chroma collection in a temporary folder. A question that raises is recorded
with its error and the run goes on.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..assistant import Assistant
from ..corpus import load_corpus
from ..embeddings import Embedder
from ..errors import ConfigError
from ..generators.registry import ENGINES, UnknownEngineError
from ..knowledge_base import KnowledgeBase
from ..settings import Settings
from ..types import Answer, Passage
from .dataset import EvalQuestion, load_dataset
from .metrics import (
    RANKING_DEPTH,
    QuestionScore,
    RankedChunk,
    aggregate,
    hit_curve,
    score_question,
)
from .overrides import apply_overrides

LLM_ENGINES = ("openai", "llamacpp")
RETRIEVAL_MODES = ("hybrid", "dense", "lexical")
MAIN_NAME = "project"
INDEX_STAMP = "eval-index.json"  # in a kept --index-dir: the settings its index was built with


@dataclass(frozen=True)
class Ranked:
    chunk_id: str
    article_id: str
    score: float
    text: str


@dataclass(frozen=True)
class QuestionRun:
    question: EvalQuestion
    answer: Answer | None
    error: str | None
    ranking: tuple[Ranked, ...]
    score: QuestionScore


@dataclass(frozen=True)
class VariantRun:
    """One configuration over the whole question set (or a skipped one, with the reason)."""

    name: str
    label: str
    runs: tuple[QuestionRun, ...] = ()
    skipped: str | None = None
    wall_s: float = 0.0
    ranking_mismatches: int = 0
    warmup_ms: float | None = None  # the untimed first ask (cold start)

    @property
    def scores(self) -> list[QuestionScore]:
        return [r.score for r in self.runs]

    def summary(self) -> dict[str, Any]:
        head: dict[str, Any] = {"name": self.name, "label": self.label, "skipped": self.skipped}
        if self.skipped:
            return head
        return {
            **head,
            **aggregate(self.scores),
            "hit_at_k": {"k": list(range(1, RANKING_DEPTH + 1)),
                         "article": hit_curve(self.scores, "article"), "passage": hit_curve(self.scores, "passage")},
            "wall_s": round(self.wall_s, 2),
            "warmup_ms": self.warmup_ms,
            "ranking_mismatches": self.ranking_mismatches,
        }


AskFn = Callable[[EvalQuestion], Answer]
RankFn = Callable[[EvalQuestion, Answer | None], Sequence[Passage]]


@dataclass(frozen=True)
class VariantSpec:
    name: str
    label: str
    settings: Settings | None = None
    engine: str | None = None
    skipped: str | None = None


# --------------------------------------------------------------------------- asking

def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _ranked(passages: Sequence[Passage]) -> tuple[Ranked, ...]:
    return tuple(Ranked(p.chunk_id, p.article_id, round(p.score, 6), p.chunk.text) for p in passages)


def _consistent(answer: Answer | None, ranking: Sequence[Ranked]) -> bool:
    if answer is None or not ranking:
        return True
    ids = [r.chunk_id for r in answer.retrieved]
    return [r.chunk_id for r in ranking[: len(ids)]] == ids


def _warm_up(ask: AskFn, questions: Sequence[EvalQuestion]) -> float | None:
    """One untimed ask first (model sessions, tokenizer dictionaries, caches), so latencies are steady-state."""
    t = time.perf_counter()
    try:
        ask(questions[0])
    except Exception:  # noqa: BLE001 - the real run records the error
        return None
    return round((time.perf_counter() - t) * 1000, 1)


def run_questions(
    name: str, label: str, questions: Sequence[EvalQuestion], ask: AskFn, rank: RankFn,
    body_of: Callable[[str], str | None], progress: bool = True,
) -> VariantRun:
    """Ask every question (after one untimed warm-up ask); errors are caught per question and recorded in its row."""
    t0 = time.perf_counter()
    warmup_ms = _warm_up(ask, questions)
    runs: list[QuestionRun] = []
    mismatches = 0
    for q in tqdm(questions, desc=label, unit="q", disable=not progress, file=sys.stderr, leave=False):
        answer: Answer | None = None
        error: str | None = None
        ranking: tuple[Ranked, ...] = ()
        try:
            answer = ask(q)
        except Exception as exc:  # noqa: BLE001 - one bad question must not abort the run
            error = _error_text(exc)
        try:
            ranking = _ranked(rank(q, answer))
        except Exception as exc:  # noqa: BLE001
            error = error or f"retrieval ranking: {_error_text(exc)}"
        mismatches += not _consistent(answer, ranking)
        score = score_question(
            qid=q.id, lang=q.lang, qtype=q.type, answerable=q.answerable, must_include=q.must_include,
            sources=q.sources, evidence=q.evidence, answer=answer,
            ranking=[RankedChunk(r.article_id, r.text) for r in ranking], body_of=body_of, error=error,
        )
        runs.append(QuestionRun(q, answer, error, ranking, score))
    return VariantRun(name, label, tuple(runs), wall_s=time.perf_counter() - t0, ranking_mismatches=mismatches,
                      warmup_ms=warmup_ms)


def _project_fns(assistant: Assistant, engine: str) -> tuple[AskFn, RankFn]:
    def ask(q: EvalQuestion) -> Answer:
        return assistant.ask(q.question, history=q.history, engine=engine)

    def rank(q: EvalQuestion, answer: Answer | None) -> Sequence[Passage]:
        query = answer.standalone_question if answer is not None else q.question
        return assistant.kb.search(query, k=max(RANKING_DEPTH, assistant.settings.answer.passages))

    return ask, rank


# --------------------------------------------------------------------------- variants

def isolated_settings(settings: Settings, data_dir: Path, corpus_dir: Path) -> Settings:
    """``settings`` with the eval's own ``data_dir`` and an embedded Chroma (never the user's index)."""
    return settings.model_copy(update={
        "data_dir": data_dir,
        "corpus_dir": corpus_dir,
        "chroma": settings.chroma.model_copy(update={"mode": "persistent"}),
    })


def index_stamp(settings: Settings) -> dict[str, Any]:
    """What a kept index was built with, beyond what ingest itself tracks.

    Ingest re-embeds changed files (content hashes) and keeps one vector collection per
    embedding model, but it cannot see a change of chunking or of how passages are
    embedded: a reused index would silently answer from the old chunks.
    """
    emb, chunking = settings.embedding, settings.chunking
    return {
        "chunking": {"max_chars": chunking.max_chars, "overlap_sentences": chunking.overlap_sentences},
        "embedding": {"backend": emb.backend, "passage_prefix": emb.passage_prefix,
                      "max_seq_length": emb.max_seq_length},
    }


def prepare_index_dir(index_dir: Path, settings: Settings) -> None:
    """Create ``index_dir`` or check that its index was built with the same settings (:func:`index_stamp`)."""
    stamp_path = index_dir / INDEX_STAMP
    wanted = index_stamp(settings)
    if stamp_path.is_file():
        built = json.loads(stamp_path.read_text(encoding="utf-8"))
        if built != wanted:
            raise ConfigError(
                f"The eval index in {index_dir} was built with other settings ({json.dumps(built)}; these "
                f"settings: {json.dumps(wanted)}). Delete {index_dir} or pass another --index-dir, and run again."
            )
        return
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp_path.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")


def _with(settings: Settings, section: str, **values: Any) -> Settings:
    return settings.model_copy(update={section: getattr(settings, section).model_copy(update=values)})


def configured_llm_engine(settings: Settings) -> str | None:
    """The LLM engine the settings can run: ``openai`` with an endpoint, ``llamacpp`` with a GGUF."""
    if settings.llm.base_url:
        return "openai"
    if settings.llm.gguf_path:
        return "llamacpp"
    return None


def ablation_specs(settings: Settings, engine: str) -> list[VariantSpec]:
    """The variants next to the main run: the other retrieval modes, the other engine, rewriting toggled."""
    specs: list[VariantSpec] = []
    for mode in RETRIEVAL_MODES:
        if mode != settings.retrieval.mode:
            label = "retrieval: lexical (BM25 only)" if mode == "lexical" else f"retrieval: {mode}"
            specs.append(VariantSpec(f"retrieval-{mode}", label, _with(settings, "retrieval", mode=mode), engine))
    if engine in LLM_ENGINES:
        specs.append(VariantSpec("engine-extractive", "engine: extractive", settings, "extractive"))
    elif (llm := configured_llm_engine(settings)) is not None:
        specs.append(VariantSpec(f"engine-{llm}", f"engine: llm ({llm})", settings, llm))
    else:
        specs.append(VariantSpec("engine-llm", "engine: llm", skipped="no LLM configured (set llm.base_url or llm.gguf_path)"))
    rewrite = settings.answer.rewrite_followups
    specs.append(VariantSpec(
        f"rewrite-{'off' if rewrite else 'on'}",
        f"follow-up rewriting {'off' if rewrite else 'on'}",
        _with(settings, "answer", rewrite_followups=not rewrite),
        engine,
    ))
    return specs


def main_label(settings: Settings, engine: str) -> str:
    rewrite = "on" if settings.answer.rewrite_followups else "off"
    return f"project ({settings.retrieval.mode}, {engine}, rewriting {rewrite})"


def _run_project(
    name: str, label: str, settings: Settings, kb: KnowledgeBase, engine: str, questions: Sequence[EvalQuestion],
    body_of: Callable[[str], str | None], progress: bool,
) -> VariantRun:
    variant_kb = kb if settings is kb.settings else KnowledgeBase(settings, embedder=kb.embedder, index=kb.index)
    ask, rank = _project_fns(Assistant(settings, kb=variant_kb), engine)
    return run_questions(name, label, questions, ask, rank, body_of, progress)


def _run_ablations(
    settings: Settings, kb: KnowledgeBase, engine: str, questions: Sequence[EvalQuestion],
    body_of: Callable[[str], str | None], progress: bool,
) -> list[VariantRun]:
    """Each ablation over the one index (a skipped one is kept, with its reason)."""
    runs: list[VariantRun] = []
    for spec in ablation_specs(settings, engine):
        if spec.skipped or spec.settings is None:
            runs.append(VariantRun(spec.name, spec.label, skipped=spec.skipped))
            continue
        runs.append(_run_project(spec.name, spec.label, spec.settings, kb, spec.engine or engine, questions,
                                 body_of, progress))
    return runs


def _run_baseline(
    kb: KnowledgeBase, articles: Sequence[Any], tmp: Path, questions: Sequence[EvalQuestion],
    body_of: Callable[[str], str | None], progress: bool,
) -> tuple[VariantRun, int]:
    """The baseline's run and its number of chunks."""
    from .baseline import LangChainBaseline

    base = LangChainBaseline(kb.index, kb.embedder, articles, tmp / "baseline-chroma")

    def ask(q: EvalQuestion) -> Answer:
        return base.ask(q.question)

    def rank(q: EvalQuestion, answer: Answer | None) -> Sequence[Passage]:
        return base.search(q.question, RANKING_DEPTH)

    return run_questions(base.name, base.label, questions, ask, rank, body_of, progress), len(base.documents)


# --------------------------------------------------------------------------- entry point

@dataclass(frozen=True)
class EvalResult:
    report: dict[str, Any]
    main: VariantRun
    variants: tuple[VariantRun, ...]
    out_dir: Path


def run_eval(
    corpus_dir: Path,
    questions_path: Path,
    out_dir: Path,
    settings: Settings,
    engine: str | None = None,
    config_overrides: Sequence[str] = (),
    *,
    ablations: bool = False,
    baseline: bool = False,
    embedder: Embedder | None = None,
    progress: bool = True,
    limit: int | None = None,
    index_dir: Path | None = None,
) -> EvalResult:
    """Evaluate the corpus/questions and write results.jsonl, report.json, report.md and plots to ``out_dir``.

    ``limit``: ask only the first ``limit`` questions (quick runs; the report says so).
    ``index_dir``: keep the index there and reuse it next time (ingest embeds only what
    changed) instead of building it in a temporary folder; the baseline's Chroma
    collection stays temporary. The dataset and the overrides are validated before
    anything is indexed (:class:`~.dataset.DatasetError`,
    :class:`~tongcheng_qa.errors.ConfigError`).
    """
    from .report import build_report, write_outputs

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    all_questions = load_dataset(questions_path)
    questions = all_questions[:limit]
    settings = apply_overrides(settings, config_overrides)
    engine = engine or settings.answer.engine
    if engine not in ENGINES:
        raise UnknownEngineError(engine)
    corpus_dir = Path(corpus_dir)
    if index_dir is not None:
        prepare_index_dir(Path(index_dir), settings)
    articles, corpus_errors = load_corpus(corpus_dir)
    bodies = {a.article_id: a.body for a in articles}
    with tempfile.TemporaryDirectory(prefix="tongcheng-eval-") as tmp_name:
        tmp = Path(tmp_name)
        eval_settings = isolated_settings(settings, Path(index_dir) if index_dir is not None else tmp / "data",
                                          corpus_dir)
        kb = KnowledgeBase(eval_settings, embedder=embedder)
        ingest = kb.ingest(corpus_dir, progress=progress)
        kb.check_ready()
        main = _run_project(MAIN_NAME, main_label(eval_settings, engine), eval_settings, kb, engine, questions,
                            bodies.get, progress)
        variants = _run_ablations(eval_settings, kb, engine, questions, bodies.get, progress) if ablations else []
        baseline_chunks: int | None = None
        if baseline:
            baseline_run, baseline_chunks = _run_baseline(kb, articles, tmp, questions, bodies.get, progress)
            variants.append(baseline_run)
        n_chunks = len(kb.index.snapshot().chunks)
    run_info = {
        "started_at": started.isoformat(timespec="seconds"),
        "corpus": str(corpus_dir),
        "questions": str(questions_path),
        "limit": limit,
        "questions_total": len(all_questions),
        "n_questions": len(questions),
        "index_dir": str(index_dir) if index_dir is not None else None,
        "articles": len(articles),
        "chunks": n_chunks,
        "baseline_chunks": baseline_chunks,
        "ingest": ingest.to_dict(),
        "corpus_errors": [str(e) for e in corpus_errors],
        "unknown_sources": sorted({s for q in questions for s in q.sources} - bodies.keys()),
        "engine": engine,
        "retrieval_mode": eval_settings.retrieval.mode,
        "answer_passages": eval_settings.answer.passages,
        "rewrite_followups": eval_settings.answer.rewrite_followups,
        "embedding_model": kb.index.model_name,
        "embedding_backend": eval_settings.embedding.backend,
        "config_overrides": list(config_overrides),
        "ranking_depth": RANKING_DEPTH,
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    report = build_report(main, variants, run_info)
    write_outputs(Path(out_dir), report, main, variants)
    return EvalResult(report, main, tuple(variants), Path(out_dir))
