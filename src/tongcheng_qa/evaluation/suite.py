"""Every dataset in one command: the folders under a datasets root, plus the team's gold set.

``tongcheng-qa eval --datasets ROOT [--gold FILE] --out OUT`` runs :func:`~.runner.run_eval`
once per dataset, into ``OUT/<dataset name>/`` (the gold set into ``OUT/gold/``), and
writes ``OUT/SUMMARY.md`` and ``OUT/summary.json``: one row a dataset with the headline
metrics and the baseline's beside them, so the datasets can be compared at a glance.

A dataset folder holds ``corpus/`` and ``questions.jsonl`` (the layout of
``../shared/datasets/``); its name is the folder's name. Every dataset is validated before
anything is indexed, and the summary is rewritten after each dataset, so a long run that
stops half-way still leaves the finished rows.

:func:`plan_eval` turns the command's options into the list of datasets (the single
form ``--corpus DIR --questions FILE`` is a list of one) and says what is wrong with them
(:class:`EvalUsageError`), so the rules are testable without the command line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..embeddings import Embedder
from ..errors import TongchengQAError
from ..settings import Settings
from .dataset import load_dataset
from .report import REPORT_MD, fmt, markdown_table
from .runner import EvalResult, run_eval

DATASET_CORPUS = "corpus"
DATASET_QUESTIONS = "questions.jsonl"
GOLD_NAME = "gold"
SUMMARY_MD = "SUMMARY.md"
SUMMARY_JSON = "summary.json"
BASELINE_NAME = "baseline"

#: SUMMARY.md columns after the dataset name: (summary.json key, header).
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n", "n"),
    ("answer_accuracy", "answer acc."),
    ("answer_accuracy_zh", "answer acc. zh"),
    ("answer_accuracy_en", "answer acc. en"),
    ("short_answer_accuracy", "short-answer acc."),
    ("refusal_accuracy", "refusal acc."),
    ("false_refusal_rate", "false refusal"),
    ("retrieval_hit_at_5", "hit@5"),
    ("citation_valid_rate", "citation valid"),
    ("citation_precision", "citation precision"),
    ("language_match", "language match"),
    ("latency_ms_p50", "latency p50 ms"),
    ("baseline_answer_accuracy", "baseline answer acc."),
    ("baseline_refusal_accuracy", "baseline refusal acc."),
)

#: Keys copied as they are from a dataset's report.json into its summary row.
_REPORT_KEYS = ("short_answer_accuracy", "refusal_accuracy", "false_refusal_rate", "retrieval_hit_at_5",
                "citation_valid_rate", "citation_precision", "language_match", "latency_ms_p50")


class EvalUsageError(TongchengQAError):
    """The eval options name no dataset, or a folder is not a dataset; the message names the fix."""


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluation set: its report name, the articles to index and the JSONL questions."""

    name: str
    corpus: Path
    questions: Path


# --------------------------------------------------------------------------- finding datasets

def dataset_problems(folder: Path) -> list[str]:
    """What ``folder`` lacks to be a dataset folder ([] when it is one)."""
    problems = []
    if not (folder / DATASET_CORPUS).is_dir():
        problems.append(f"{folder} has no {DATASET_CORPUS}/ folder")
    if not (folder / DATASET_QUESTIONS).is_file():
        problems.append(f"{folder} has no {DATASET_QUESTIONS}")
    return problems


def discover_datasets(root: Path) -> list[DatasetSpec]:
    """Every sub-folder of ``root`` (hidden ``.``/``_`` ones skipped), sorted by name; all must be datasets."""
    if not root.is_dir():
        raise EvalUsageError(f"--datasets {root} is not a folder. Pass the folder that holds the dataset folders.")
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
    if not folders:
        raise EvalUsageError(
            f"--datasets {root} holds no dataset folders. Each dataset is a folder with {DATASET_CORPUS}/ and "
            f"{DATASET_QUESTIONS}, e.g. {root}/cmrc2018/{DATASET_CORPUS}/."
        )
    problems = [p for d in folders for p in dataset_problems(d)]
    if problems:
        raise EvalUsageError(
            "Not a dataset folder: " + "; ".join(problems) + f". Each folder under {root} needs {DATASET_CORPUS}/ "
            f"(the articles) and {DATASET_QUESTIONS}; move other folders out (or prefix their name with _)."
        )
    return [DatasetSpec(d.name, d / DATASET_CORPUS, d / DATASET_QUESTIONS) for d in folders]


def dataset_name(corpus: Path, questions: Path) -> str:
    """A single-form run's name: the dataset folder for ``<folder>/questions.jsonl``, else the file's stem.

    So ``--corpus corpus --questions eval/gold.jsonl`` is ``gold`` in either form, and a
    kept ``--index-dir`` is shared between the two.
    """
    folder = questions.parent
    if questions.name == DATASET_QUESTIONS and corpus.resolve() == (folder / DATASET_CORPUS).resolve():
        return folder.resolve().name
    return questions.stem


def plan_eval(
    *, corpus: Path | None, questions: Path | None, datasets_root: Path | None, gold: Path | None,
    default_corpus: Path,
) -> tuple[bool, list[DatasetSpec]]:
    """``(suite, datasets)`` from the eval options; ``suite`` False is the single-dataset form.

    Single form: ``--corpus`` and ``--questions``. Suite form: ``--datasets ROOT`` and/or
    ``--gold FILE`` (over ``--corpus``, default ``default_corpus``), gold first: it is the
    quickest and the one the team reads first.
    """
    if datasets_root is None and gold is None:
        if corpus is None or questions is None:
            missing = "--questions FILE" if corpus is not None else "--corpus DIR" if questions is not None else None
            raise EvalUsageError(
                (f"{missing} is missing. " if missing else "No dataset given. ")
                + "Run one dataset with --corpus DIR --questions FILE (e.g. --corpus corpus --questions "
                "eval/gold.jsonl), or every dataset folder with --datasets ROOT [--gold FILE] "
                "(e.g. --datasets ../shared/datasets --gold eval/gold.jsonl)."
            )
        return False, [DatasetSpec(dataset_name(corpus, questions), corpus, questions)]
    if questions is not None:
        raise EvalUsageError(
            "--questions is for a single dataset. With --datasets, add your own question set with --gold FILE "
            "(asked over --corpus DIR, default corpus/)."
        )
    if corpus is not None and gold is None:
        raise EvalUsageError("With --datasets, --corpus is the corpus of --gold FILE: add --gold, or drop --corpus.")
    specs = []
    if gold is not None:
        gold_corpus = corpus or default_corpus
        if not gold_corpus.is_dir():
            raise EvalUsageError(f"The corpus of --gold, {gold_corpus}, is not a folder. Pass it with --corpus DIR.")
        specs.append(DatasetSpec(GOLD_NAME, gold_corpus, gold))
    if datasets_root is not None:
        found = discover_datasets(datasets_root)
        if gold is not None and any(s.name == GOLD_NAME for s in found):
            raise EvalUsageError(
                f"{datasets_root}/{GOLD_NAME} and --gold would both write {GOLD_NAME}/: rename that folder."
            )
        specs += found
    return True, specs


# --------------------------------------------------------------------------- summary

def _baseline(report: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((v for v in report.get("variants", []) if v["name"] == BASELINE_NAME and not v.get("skipped")), {})


def summary_row(name: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """One dataset's row of summary.json: ``dataset``, ``report`` (its path), the :data:`SUMMARY_COLUMNS` keys."""
    by_lang = report.get("by_lang", {})
    base = _baseline(report)
    return {
        "dataset": name,
        "report": f"{name}/{REPORT_MD}",
        "n": report["n"],
        "questions_total": report["run"]["questions_total"],
        "answer_accuracy": report.get("answer_accuracy"),
        "answer_accuracy_zh": by_lang.get("zh", {}).get("answer_accuracy"),
        "answer_accuracy_en": by_lang.get("en", {}).get("answer_accuracy"),
        **{k: report.get(k) for k in _REPORT_KEYS},
        "baseline_answer_accuracy": base.get("answer_accuracy"),
        "baseline_refusal_accuracy": base.get("refusal_accuracy"),
    }


def render_summary(rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any]) -> str:
    """SUMMARY.md: what ran, then one table row a dataset linking to its report."""
    table = [[f"[{r['dataset']}]({r['report']})", *(fmt(r.get(k), k) for k, _ in SUMMARY_COLUMNS)] for r in rows]
    limit = info.get("limit")
    lines = [
        "# Evaluation summary",
        "",
        (f"- {len(rows)} dataset(s); engine {info['engine']}; started {info['started_at']}; wall time "
         f"{info['wall_s']:.1f} s"),
        *([f"- **partial run**: the first {limit} questions of each dataset (`--limit {limit}`)"] if limit else []),
        *([f"- indexes kept in `{info['index_root']}/<dataset>`"] if info.get("index_root") else []),
        ("- per-dataset reports: `<dataset>/report.md` (metric definitions there); `–` = no eligible question "
         "(or no baseline run)"),
        "",
        *markdown_table(["dataset", *(h for _, h in SUMMARY_COLUMNS)], table),
        "",
    ]
    return "\n".join(lines)


def write_summary(out_root: Path, rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any]) -> None:
    out_root.mkdir(parents=True, exist_ok=True)
    data = {**info, "datasets": list(rows)}
    (out_root / SUMMARY_JSON).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out_root / SUMMARY_MD).write_text(render_summary(rows, info), encoding="utf-8")


# --------------------------------------------------------------------------- running

@dataclass(frozen=True)
class SuiteResult:
    rows: tuple[dict[str, Any], ...]
    out_root: Path

    @property
    def summary_md(self) -> Path:
        return self.out_root / SUMMARY_MD


def run_suite(
    specs: Sequence[DatasetSpec],
    out_root: Path,
    settings: Settings,
    engine: str | None = None,
    config_overrides: Sequence[str] = (),
    *,
    ablations: bool = False,
    baseline: bool = False,
    limit: int | None = None,
    index_root: Path | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
    on_done: Callable[[DatasetSpec, EvalResult], None] | None = None,
) -> SuiteResult:
    """Evaluate each dataset into ``out_root/<name>/`` and summarize them in ``out_root``.

    Every question file is validated first (:class:`~.dataset.DatasetError`), so a typo in
    the last dataset does not surface after an hour. With ``index_root`` each dataset's
    index is kept in ``index_root/<name>``. ``on_done`` is called after each dataset.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise EvalUsageError(f"Two datasets share a name ({', '.join(names)}); each needs its own report folder.")
    for spec in specs:
        load_dataset(spec.questions)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for spec in tqdm(specs, desc="datasets", unit="dataset", disable=not progress, file=sys.stderr):
        result = run_eval(
            spec.corpus, spec.questions, out_root / spec.name, settings, engine, config_overrides,
            ablations=ablations, baseline=baseline, embedder=embedder, progress=progress, limit=limit,
            index_dir=index_root / spec.name if index_root is not None else None,
        )
        rows.append(summary_row(spec.name, result.report))
        info = {
            "started_at": started.isoformat(timespec="seconds"),
            "engine": result.report["run"]["engine"],
            "limit": limit,
            "index_root": str(index_root) if index_root is not None else None,
            "wall_s": round(time.perf_counter() - t0, 2),
        }
        write_summary(out_root, rows, info)
        if on_done is not None:
            on_done(spec, result)
    return SuiteResult(tuple(rows), out_root)
