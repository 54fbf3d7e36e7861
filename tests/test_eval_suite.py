"""Evaluating every dataset in one command: planning the datasets, the per-dataset reports, SUMMARY.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import write_corpus
from fakes import HashEmbedder
from test_eval_runner import QUESTIONS, check_outputs, q, write_jsonl

from tongcheng_qa.cli import main
from tongcheng_qa.evaluation import DatasetError
from tongcheng_qa.evaluation.suite import (
    SUMMARY_COLUMNS,
    DatasetSpec,
    EvalUsageError,
    plan_eval,
    run_suite,
)
from tongcheng_qa.settings import Settings

ZH_ONLY = [QUESTIONS[0], QUESTIONS[2], q("z3", question="成都都市圈有多少家企业实现跨市域产业协作?", answer="1500余家",
                                         must_include=["1500余家"], sources=["b.txt"])]


def make_dataset(root: Path, name: str, questions: list[dict[str, object]]) -> Path:
    """A dataset folder like ../shared/datasets/*: the three test articles in corpus/, and questions.jsonl."""
    folder = root / name
    write_corpus(folder / "corpus")
    write_jsonl(folder / "questions.jsonl", questions)
    return folder


@pytest.fixture
def datasets_root(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    make_dataset(root, "beta", QUESTIONS)
    make_dataset(root, "alpha", ZH_ONLY)
    (root / "README.md").write_text("not a dataset, and not a folder\n", encoding="utf-8")
    (root / ".cache").mkdir()  # hidden folders are not datasets
    return root


@pytest.fixture
def gold(tmp_path: Path) -> Path:
    (tmp_path / "eval").mkdir()
    return write_jsonl(tmp_path / "eval" / "gold.jsonl", QUESTIONS[:3])


def _plan(**kw: Any) -> tuple[bool, list[DatasetSpec]]:
    options: dict[str, Any] = {"corpus": None, "questions": None, "datasets_root": None, "gold": None,
                               "default_corpus": Path("no-such-corpus")}
    return plan_eval(**{**options, **kw})


# --------------------------------------------------------------------------- planning

def test_plan_single_form_is_one_dataset_named_after_its_questions(datasets_root: Path, gold: Path,
                                                                   corpus_dir: Path) -> None:
    assert _plan(corpus=corpus_dir, questions=gold) == (False, [DatasetSpec("gold", corpus_dir, gold)])
    beta = datasets_root / "beta"
    suite, [spec] = _plan(corpus=beta / "corpus", questions=beta / "questions.jsonl")
    assert not suite and spec.name == "beta"  # <folder>/questions.jsonl over <folder>/corpus: the folder's name


def test_plan_datasets_sorted_with_gold_first(datasets_root: Path, gold: Path, corpus_dir: Path) -> None:
    suite, specs = _plan(datasets_root=datasets_root, gold=gold, corpus=corpus_dir)
    assert suite and [s.name for s in specs] == ["gold", "alpha", "beta"]
    assert specs[0] == DatasetSpec("gold", corpus_dir, gold)
    assert specs[1] == DatasetSpec("alpha", datasets_root / "alpha" / "corpus", datasets_root / "alpha" / "questions.jsonl")
    assert _plan(datasets_root=datasets_root)[1][0].name == "alpha"
    # --gold alone is the suite form too; its corpus defaults to the settings' corpus folder
    assert _plan(gold=gold, default_corpus=corpus_dir) == (True, [DatasetSpec("gold", corpus_dir, gold)])


@pytest.mark.parametrize(("kw", "message"), [
    ({}, "No dataset given.*--corpus DIR --questions FILE.*--datasets ROOT"),
    ({"corpus": Path("c")}, "--questions FILE is missing"),
    ({"questions": Path("q.jsonl")}, "--corpus DIR is missing"),
    ({"datasets_root": "ROOT", "questions": Path("q.jsonl")}, "--questions is for a single dataset.*--gold FILE"),
    ({"datasets_root": "ROOT", "corpus": Path("c")}, "--corpus is the corpus of --gold FILE"),
    ({"gold": "GOLD"}, "The corpus of --gold, no-such-corpus, is not a folder. Pass it with --corpus DIR"),
])
def test_plan_usage_errors_name_the_fix(kw: dict[str, Any], message: str, datasets_root: Path, gold: Path) -> None:
    resolved = {k: datasets_root if v == "ROOT" else gold if v == "GOLD" else v for k, v in kw.items()}
    with pytest.raises(EvalUsageError, match=message):
        _plan(**resolved)


def test_every_folder_that_is_not_a_dataset_is_named(datasets_root: Path) -> None:
    (datasets_root / "gamma" / "corpus").mkdir(parents=True)  # no questions.jsonl
    (datasets_root / "delta").mkdir()
    write_jsonl(datasets_root / "delta" / "questions.jsonl", QUESTIONS)  # no corpus/
    with pytest.raises(EvalUsageError) as info:
        _plan(datasets_root=datasets_root)
    text = str(info.value)
    assert f"{datasets_root / 'gamma'} has no questions.jsonl" in text
    assert f"{datasets_root / 'delta'} has no corpus/ folder" in text
    assert "alpha" not in text and "needs corpus/" in text


def test_empty_root_and_gold_name_clash(tmp_path: Path, datasets_root: Path, gold: Path, corpus_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalUsageError, match="holds no dataset folders"):
        _plan(datasets_root=tmp_path / "empty")
    make_dataset(datasets_root, "gold", QUESTIONS[:1])
    with pytest.raises(EvalUsageError, match="both write gold/"):
        _plan(datasets_root=datasets_root, gold=gold, corpus=corpus_dir)


# --------------------------------------------------------------------------- running

def test_run_suite_writes_a_report_per_dataset_and_a_summary(tmp_path: Path, datasets_root: Path, gold: Path,
                                                             corpus_dir: Path, settings: Settings) -> None:
    _, specs = _plan(datasets_root=datasets_root, gold=gold, corpus=corpus_dir)
    out, index_root = tmp_path / "reports", tmp_path / "eval-index"
    done: list[str] = []
    result = run_suite(specs, out, settings, baseline=True, limit=4, index_root=index_root, embedder=HashEmbedder(),
                       progress=False, on_done=lambda spec, _: done.append(spec.name))
    assert done == ["gold", "alpha", "beta"]
    reports = {name: check_outputs(out / name, n) for name, n in (("gold", 3), ("alpha", 3), ("beta", 4))}
    assert reports["beta"]["run"]["limit"] == 4 and reports["beta"]["run"]["questions_total"] == 5
    assert all((index_root / name / "eval-index.json").is_file() for name in reports)
    assert not settings.data_dir.exists()

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["limit"] == 4 and [r["dataset"] for r in summary["datasets"]] == ["gold", "alpha", "beta"]
    assert list(result.rows) == summary["datasets"]
    for row in summary["datasets"]:
        report = reports[row["dataset"]]
        baseline = next(v for v in report["variants"] if v["name"] == "baseline")
        assert {k for k, _ in SUMMARY_COLUMNS} <= set(row)
        assert row["n"] == report["n"] and row["report"] == f"{row['dataset']}/report.md"
        for key in ("answer_accuracy", "short_answer_accuracy", "refusal_accuracy", "citation_valid_rate",
                    "latency_ms_p50"):
            assert row[key] == report[key], key
        assert row["answer_accuracy_zh"] == report["by_lang"]["zh"]["answer_accuracy"]
        assert row["baseline_answer_accuracy"] == baseline["answer_accuracy"]
        assert row["baseline_refusal_accuracy"] == baseline["refusal_accuracy"]
    alpha = summary["datasets"][1]
    assert alpha["answer_accuracy_en"] is None and alpha["answer_accuracy_zh"] is not None  # zh-only dataset

    md = result.summary_md.read_text(encoding="utf-8")
    assert "| dataset | n | answer acc. | answer acc. zh | answer acc. en | short-answer acc. |" in md
    assert "baseline answer acc. | baseline refusal acc. |" in md
    assert md.count("](") == 3 and "| [alpha](alpha/report.md) | 3 |" in md
    assert "partial run**: the first 4 questions of each dataset" in md


def test_run_suite_validates_every_dataset_before_running_any(tmp_path: Path, datasets_root: Path,
                                                              settings: Settings) -> None:
    (datasets_root / "beta" / "questions.jsonl").write_text('{"id": "broken"\n', encoding="utf-8")
    _, specs = _plan(datasets_root=datasets_root)
    with pytest.raises(DatasetError, match="line 1: invalid JSON"):
        run_suite(specs, tmp_path / "reports", settings, embedder=HashEmbedder(), progress=False)
    assert not (tmp_path / "reports").exists()  # alpha comes first and was not run either


# --------------------------------------------------------------------------- command line

def _eval(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--data-dir", str(tmp_path / "user-data"), "eval", *args])


def test_cli_usage_errors_exit_2_with_the_fix(tmp_path: Path, datasets_root: Path, gold: Path) -> None:
    result = _eval(tmp_path, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "No dataset given" in result.output and "--datasets ROOT" in result.output
    (datasets_root / "gamma").mkdir()
    result = _eval(tmp_path, "--datasets", str(datasets_root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "gamma has no corpus/ folder" in result.output
    result = _eval(tmp_path, "--datasets", str(datasets_root), "--questions", str(gold), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "--gold FILE" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "user-data").exists()


def test_cli_malformed_dataset_in_a_suite_exits_2_and_runs_nothing(tmp_path: Path, datasets_root: Path) -> None:
    write_jsonl(datasets_root / "alpha" / "questions.jsonl", [json.dumps(q("q1")), "{oops"])
    result = _eval(tmp_path, "--datasets", str(datasets_root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "alpha" in result.output and "line 2: invalid JSON" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_suite_with_limit_and_a_kept_index(tmp_path: Path, datasets_root: Path, gold: Path, corpus_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole command with a fake embedder (the real one: the slow test below)."""
    monkeypatch.setattr("tongcheng_qa.embeddings.build_embedder", lambda *a, **k: HashEmbedder())
    args = ["--datasets", str(datasets_root), "--gold", str(gold), "--corpus", str(corpus_dir),
            "--limit", "2", "--index-dir", str(tmp_path / "idx")]
    first = _eval(tmp_path, *args, "--out", str(tmp_path / "r1"))
    assert first.exit_code == 0, first.output
    assert "[gold] 2 questions" in first.output and "# Evaluation summary" in first.output
    assert f"Summary: {tmp_path / 'r1' / 'SUMMARY.md'}" in first.output
    second = _eval(tmp_path, *args, "--out", str(tmp_path / "r2"))
    assert second.exit_code == 0, second.output
    for name in ("gold", "alpha", "beta"):
        ingest = json.loads((tmp_path / "r2" / name / "report.json").read_text(encoding="utf-8"))["run"]["ingest"]
        assert ingest["chunks_embedded"] == 0 and ingest["unchanged"] == 3, name
    assert not (tmp_path / "user-data").exists()


def test_cli_single_form_with_index_dir_uses_the_dataset_name(tmp_path: Path, datasets_root: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tongcheng_qa.embeddings.build_embedder", lambda *a, **k: HashEmbedder())
    beta = datasets_root / "beta"
    result = _eval(tmp_path, "--corpus", str(beta / "corpus"), "--questions", str(beta / "questions.jsonl"),
                   "--out", str(tmp_path / "out"), "--limit", "1", "--index-dir", str(tmp_path / "idx"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "idx" / "beta" / "eval-index.json").is_file()
    assert json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["n"] == 1
    assert not (tmp_path / "out" / "SUMMARY.md").exists()  # the single form writes one report, as before


@pytest.mark.slow
def test_cli_suite_with_the_real_embedder_reuses_its_index(tmp_path: Path, datasets_root: Path) -> None:
    args = ["--datasets", str(datasets_root), "--limit", "3", "--index-dir", str(tmp_path / "idx")]
    first = _eval(tmp_path, *args, "--out", str(tmp_path / "r1"))
    assert first.exit_code == 0, first.output
    second = _eval(tmp_path, *args, "--out", str(tmp_path / "r2"), "--baseline")
    assert second.exit_code == 0, second.output
    summary = json.loads((tmp_path / "r2" / "summary.json").read_text(encoding="utf-8"))
    for row in summary["datasets"]:
        report = json.loads((tmp_path / "r2" / row["dataset"] / "report.json").read_text(encoding="utf-8"))
        assert report["run"]["ingest"]["chunks_embedded"] == 0
        assert report["retrieval_hit_at_5"] == 1.0  # 3 articles, 5 chunks
        assert row["baseline_answer_accuracy"] is not None
