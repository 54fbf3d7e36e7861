"""report.json, report.md (tables, failed questions, plots) and the results files.

``report.json``: the contract keys of the main run overall and under ``by_lang`` /
``by_type`` (each language also broken down by type), the extras of :mod:`.metrics`,
``hit_at_k`` curves, ``run`` (what was evaluated, how long it took), and ``variants``
(ablations and the baseline, same keys; a skipped one says why).

``results.jsonl``: one line a question of the main run, ``{"id", "answer": <Answer>}``
plus ``question``, ``error``, ``retrieval`` (the ranking to depth 10) and ``score`` (the
per-question metrics). ``variants/<name>.jsonl``: the same for each ablation/baseline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .metrics import CONTRACT_KEYS, EXTRA_KEYS, missing_items, summarize
from .plots import (
    ACCURACY_PNG,
    HIT_AT_K_PNG,
    LATENCY_PNG,
    accuracy_table,
    plot_accuracy,
    plot_hit_at_k,
    plot_latency,
)
from .runner import QuestionRun, VariantRun

RESULTS = "results.jsonl"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
VARIANTS_DIR = "variants"

DESCRIPTIONS: dict[str, str] = {
    "n": "questions",
    "answer_accuracy": "answerable, not refused, all must_include present (case/width-folded)",
    "short_answer_accuracy": "the same on the short answer only (Answer.short_answer, else the first line) (extra)",
    "refusal_accuracy": "unanswerable questions refused",
    "false_refusal_rate": "answerable questions refused",
    "retrieval_hit_at_5": "a gold-source article among the top 5 chunks",
    "mrr": "1 / rank of the first gold-source chunk (depth 10)",
    "citation_precision": "citations (answerable questions) whose article is a gold source",
    "citation_valid_rate": "citation quotes equal to body[start:end]",
    "language_match": "answer language (zh when CJK > 30% of its letters, else en; no letters: any) = question language",
    "latency_ms_p50": "median Answer.timings_ms.total",
    "latency_ms_p95": "95th percentile of Answer.timings_ms.total",
    "passage_hit_at_5": "a top-5 chunk contains an evidence string (extra)",
    "passage_mrr": "1 / rank of the first chunk with an evidence string (extra)",
    "evidence_recall_at_5": "share of evidence strings in the top 5 chunks (extra)",
    "errors": "questions that raised",
}
COMPARISON_KEYS = (
    "answer_accuracy", "short_answer_accuracy", "refusal_accuracy", "false_refusal_rate", "retrieval_hit_at_5", "passage_hit_at_5",
    "passage_mrr", "evidence_recall_at_5", "citation_precision", "citation_valid_rate", "language_match",
    "latency_ms_p50", "latency_ms_p95",
)
TYPES = ("factoid", "multi_hop", "unanswerable", "followup")
METRICS_NOTE = (
    "See `tongcheng_qa/evaluation/metrics.py`. In short: text matching folds case and width "
    "(full-width digits, letters and punctuation count as ASCII; ∶ as :) and ignores [n] markers; "
    "refusal is the Answer's `refused` flag; `short_answer_accuracy` applies the must_include test to the "
    "Answer's `short_answer` (else its first line); `language_match` counts the letters of the whole answer "
    "([n] markers removed, quotes kept): Chinese when CJK ideographs are more than 30% of its letters, else "
    "English, and an answer without letters (a bare number or date) matches either language; a metric with "
    "no eligible question is `–` (null); a question that raised "
    "counts as wrong for accuracy/refusal/retrieval and is left out of citation/language/latency."
)


# --------------------------------------------------------------------------- report.json

def build_report(main: VariantRun, variants: Sequence[VariantRun], run_info: Mapping[str, Any]) -> dict[str, Any]:
    summary = main.summary()
    by_lang = summary["by_lang"]
    for lang in by_lang:  # language x type
        rows = [s for s in main.scores if s.lang == lang]
        by_lang[lang]["by_type"] = {t: summarize([r for r in rows if r.type == t]) for t in TYPES
                                    if any(r.type == t for r in rows)}
    for key in ("name", "label", "skipped", "wall_s", "warmup_ms", "ranking_mismatches"):
        summary.pop(key, None)
    return {
        **summary,
        "run": {"label": main.label, **run_info, "warmup_ms": main.warmup_ms,
                "ranking_mismatches": main.ranking_mismatches},
        "variants": [v.summary() for v in variants],
    }


# --------------------------------------------------------------------------- results files

def result_line(run: QuestionRun) -> dict[str, Any]:
    q = run.question
    return {
        "id": q.id,
        "answer": run.answer.to_dict() if run.answer is not None else None,
        "question": q.question,
        "lang": q.lang,
        "type": q.type,
        "error": run.error,
        "retrieval": [{"rank": i, "chunk_id": r.chunk_id, "article_id": r.article_id, "score": r.score}
                      for i, r in enumerate(run.ranking, 1)],
        "score": asdict(run.score),
    }


def _write_jsonl(path: Path, runs: Sequence[QuestionRun]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for run in runs:
            fh.write(json.dumps(result_line(run), ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- report.md

def fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}" if key.startswith("latency") else f"{value:.3f}"
    return str(value)


def _cell(text: str, limit: int = 220) -> str:
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat.replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: bool = True) -> list[str]:
    """A Markdown table; with ``numeric`` every column but the first is right-aligned."""
    align = ["---" if i == 0 or not numeric else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _metric_keys() -> list[str]:
    return [*CONTRACT_KEYS, *EXTRA_KEYS]


def overall_section(report: Mapping[str, Any]) -> list[str]:
    rows = [[f"`{k}`", fmt(report.get(k), k), DESCRIPTIONS.get(k, "")] for k in _metric_keys()]
    return ["## Overall", "", *markdown_table(["metric", "value", "definition"], rows, numeric=False), ""]


def breakdown_section(title: str, groups: Mapping[str, Mapping[str, Any]], overall: Mapping[str, Any]) -> list[str]:
    names = list(groups)
    rows = [[f"`{k}`", fmt(overall.get(k), k), *(fmt(groups[g].get(k), k) for g in names)] for k in _metric_keys()]
    return [f"## {title}", "", *markdown_table(["metric", "all", *names], rows), ""]


def comparison_section(report: Mapping[str, Any]) -> list[str]:
    header = ["configuration", "followup acc.", *COMPARISON_KEYS]
    main_row = {"label": report["run"]["label"], **report}
    rows = []
    for v in [main_row, *report.get("variants", [])]:
        if v.get("skipped"):
            rows.append([f"{v['label']} — skipped: {v['skipped']}", *("" for _ in header[1:])])
            continue
        followup = v.get("by_type", {}).get("followup", {}).get("answer_accuracy")
        rows.append([v["label"], fmt(followup), *(fmt(v.get(k), k) for k in COMPARISON_KEYS)])
    run = report["run"]
    chunks = (f" Chunks: project {run['chunks']}, baseline {run['baseline_chunks']}."
              if run.get("baseline_chunks") is not None else "")
    return [
        "## Ablations and baseline",
        "",
        ("Same questions, same index (ablations change retrieval/answer settings only); the baseline "
         "is LangChain's RecursiveCharacterTextSplitter (1000/200) + Chroma top-4 with the same embedder, "
         f"extractive engine and citation verifier, and no follow-up rewriting.{chunks}"),
        "",
        *markdown_table(header, rows),
        "",
    ]


def _expected(run: QuestionRun, missing: Sequence[Sequence[str]]) -> str:
    q = run.question
    if not q.answerable:
        return "a refusal"
    lacks = "; ".join(" / ".join(alts) for alts in missing)
    return f"{q.answer} (missing: {lacks})" if lacks else f"{q.answer} (not a refusal)"


def failures(runs: Sequence[QuestionRun]) -> list[QuestionRun]:
    return [r for r in runs if r.error is not None or (r.score.correct is False) or (r.score.refusal_correct is False)]


def failures_section(runs: Sequence[QuestionRun]) -> list[str]:
    failed = failures(runs)
    rows = []
    for r in failed:
        q = r.question
        if r.answer is None:
            got = f"error: {r.error}"
        else:
            got = ("(refused) " if r.answer.refused else "") + r.answer.answer
        missing = missing_items(r.answer.answer, q.must_include) if r.answer is not None else list(q.must_include)
        rows.append([q.id, q.type, q.lang, _cell(q.question, 120), _cell(_expected(r, missing), 160), _cell(got)])
    body = markdown_table(["id", "type", "lang", "question", "expected", "got"], rows, numeric=False) if rows else ["None."]
    return [f"## Failed questions ({len(failed)} of {len(runs)})", "", *body, ""]


def _limit_line(run: Mapping[str, Any]) -> list[str]:
    """Say loudly when only part of the set ran: its numbers are not comparable with a full run."""
    if run.get("limit") is None:
        return []
    line = (f"- **partial run**: the first {run['n_questions']} of {run['questions_total']} questions "
            f"(`--limit {run['limit']}`)")
    return [line]


def _run_line(run: Mapping[str, Any]) -> list[str]:
    return [
        (f"- configuration: {run['label']}; {run['answer_passages']} passages to the engine; embedding "
         f"`{run['embedding_model']}` ({run['embedding_backend']})"),
        (f"- corpus: `{run['corpus']}` ({run['articles']} articles, {run['chunks']} chunks); questions: "
         f"`{run['questions']}`"),
        *_limit_line(run),
        *([f"- index kept in `{run['index_dir']}` (reused by the next run)"] if run.get("index_dir") else []),
        f"- started {run['started_at']}; wall time {run['wall_s']:.1f} s (indexing, all configurations)",
        (f"- latencies are steady-state: one untimed warm-up ask first (cold start {fmt(run['warmup_ms'], 'latency')} "
         f"ms); retrieval ranking to depth {run['ranking_depth']}, {run['ranking_mismatches']} mismatches with "
         "Answer.retrieved"),
        *([f"- config overrides: {', '.join(run['config_overrides'])}"] if run["config_overrides"] else []),
        *([f"- corpus files skipped: {'; '.join(run['corpus_errors'])}"] if run["corpus_errors"] else []),
        *([f"- **sources not in the corpus**: {', '.join(run['unknown_sources'])}"] if run["unknown_sources"] else []),
    ]


def render_markdown(report: Mapping[str, Any], main: VariantRun) -> str:
    lines = [
        "# Evaluation report",
        "",
        *_run_line(report["run"]),
        "",
        *overall_section(report),
        *breakdown_section("By language", report["by_lang"], report),
        *breakdown_section("By type", report["by_type"], report),
        *comparison_section(report),
        "## Plots",
        "",
        f"![Accuracy by type and language]({ACCURACY_PNG})",
        "",
        f"![Latency distribution]({LATENCY_PNG})",
        "",
        f"![Retrieval hit@k]({HIT_AT_K_PNG})",
        "",
        *failures_section(main.runs),
        "## How the metrics are computed",
        "",
        METRICS_NOTE,
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- writing

def _latencies(v: VariantRun) -> list[float]:
    return [s.latency_ms for s in v.scores if s.latency_ms is not None]


def write_plots(out_dir: Path, report: Mapping[str, Any], main: VariantRun, variants: Sequence[VariantRun]) -> None:
    plot_accuracy(accuracy_table(report), out_dir / ACCURACY_PNG)
    ran = [v for v in variants if not v.skipped]
    baseline = [v for v in ran if v.name == "baseline"]
    plot_latency({main.label: _latencies(main), **{v.label: _latencies(v) for v in baseline}}, out_dir / LATENCY_PNG)
    curves: dict[str, list[float | None]] = {
        f"article: {main.label}": report["hit_at_k"]["article"],
        f"passage: {main.label}": report["hit_at_k"]["passage"],
    }
    for v in report.get("variants", []):
        if not v.get("skipped") and (v["name"].startswith("retrieval-") or v["name"] == "baseline"):
            curves[f"passage: {v['label']}"] = v["hit_at_k"]["passage"]
    plot_hit_at_k(curves, out_dir / HIT_AT_K_PNG)


def write_outputs(out_dir: Path, report: Mapping[str, Any], main: VariantRun, variants: Sequence[VariantRun]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out_dir / RESULTS, main.runs)
    ran = [v for v in variants if not v.skipped]
    if ran:
        (out_dir / VARIANTS_DIR).mkdir(exist_ok=True)
        for v in ran:
            _write_jsonl(out_dir / VARIANTS_DIR / f"{v.name}.jsonl", v.runs)
    (out_dir / REPORT_JSON).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_plots(out_dir, report, main, variants)
    (out_dir / REPORT_MD).write_text(render_markdown(report, main), encoding="utf-8")


def headline(report: Mapping[str, Any]) -> str:
    """A few lines for the terminal: the contract metrics and the passage-level hit."""
    keys = [k for k in CONTRACT_KEYS if k != "n"]
    keys.insert(keys.index("answer_accuracy") + 1, "short_answer_accuracy")
    keys.append("passage_hit_at_5")
    lines = [f"{report['n']} questions, {report['run']['label']}, {report['run']['wall_s']:.1f} s"]
    lines += [f"  {k:<22} {fmt(report.get(k), k)}" for k in keys]
    for v in report.get("variants", []):
        if v.get("skipped"):
            lines.append(f"  [{v['label']}] skipped: {v['skipped']}")
        else:
            lines.append(f"  [{v['label']}] answer_accuracy {fmt(v['answer_accuracy'])}, refusal_accuracy "
                         f"{fmt(v['refusal_accuracy'])}, passage_hit_at_5 {fmt(v['passage_hit_at_5'])}")
    return "\n".join(lines)
