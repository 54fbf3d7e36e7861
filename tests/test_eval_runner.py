"""Evaluation harness: dataset validation, overrides, the CLI contract and end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fakes import HashEmbedder

from tongcheng_qa.cli import main
from tongcheng_qa.conversation import Turn
from tongcheng_qa.errors import ConfigError
from tongcheng_qa.evaluation import (
    DatasetError,
    apply_overrides,
    load_dataset,
    run_eval,
)
from tongcheng_qa.evaluation.baseline import EmbedderAdapter, split_articles, to_passage
from tongcheng_qa.evaluation.metrics import CONTRACT_KEYS
from tongcheng_qa.evaluation.plots import ACCURACY_PNG, HIT_AT_K_PNG, LATENCY_PNG
from tongcheng_qa.evaluation.runner import ablation_specs
from tongcheng_qa.settings import Settings
from tongcheng_qa.types import Article, ArticleMeta


def q(qid: str, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {"id": qid, "lang": "zh", "question": "金什合作产业园目前入驻了几家企业?", "answer": "4家。",
                               "must_include": [["4家", "四家"]], "sources": ["a.md"], "type": "factoid"}
    return {**base, **kw}


QUESTIONS = [
    q("q1", evidence=["目前入驻企业4家"]),
    q("q2", lang="en", question="What is the shareholding ratio between Jinniu's urban investment group and Shifang's Hengxin company?",
      answer="6:4", must_include=[["6∶4", "6:4", "60%"]]),
    q("q3", question="金什合作产业园的占地面积是多少?", answer="UNANSWERABLE", must_include=[], sources=[], type="unanswerable"),
    q("q4", question="那还有几家在洽谈?", answer="3家。", must_include=[["3家", "三家"]], type="followup",
      history=[{"role": "user", "content": "金什合作产业园入驻了几家企业?"}, {"role": "assistant", "content": "4家。"}],
      evidence=["另有3家企业正在洽谈"]),
    q("q5", lang="en", question="How much revenue will the drone base reach over ten years?", answer="10 billion yuan",
      must_include=[["10 billion", "100亿"]], sources=["en/c.html"], evidence=["Revenue over ten years"]),
]


def write_jsonl(path: Path, rows: list[dict[str, object]] | list[str]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------------- dataset

def test_load_dataset_parses_the_contract_and_evidence(tmp_path: Path) -> None:
    questions = load_dataset(write_jsonl(tmp_path / "q.jsonl", QUESTIONS))
    assert [x.id for x in questions] == ["q1", "q2", "q3", "q4", "q5"]
    first, _, unanswerable, followup, _ = questions
    assert first.must_include == (("4家", "四家"),) and first.evidence == ("目前入驻企业4家",) and first.line == 1
    assert questions[1].evidence is None  # no key: no passage-level metric for it
    assert not unanswerable.answerable and first.answerable
    assert followup.history == (Turn("user", "金什合作产业园入驻了几家企业?"), Turn("assistant", "4家。"))


def test_dataset_errors_list_every_bad_line_with_its_number(tmp_path: Path) -> None:
    rows: list[str] = [
        json.dumps(q("q1")),
        '{"id": "q2", "lang": "zh",',  # line 2: bad JSON
        json.dumps({k: v for k, v in q("q3").items() if k != "type"}),  # line 3: missing key
        json.dumps(q("q4", lang="fr", must_include="4家", sources="a.md")),  # line 4: three wrong values
        "",  # blank: skipped
        json.dumps(q("q1")),  # line 6: duplicate id
        json.dumps(q("q7", type="unanswerable", answer="UNANSWERABLE")),  # line 7: unanswerable with sources
        json.dumps(q("q8", history=[{"role": "bot", "content": 3}], evidence="x")),  # line 8
        json.dumps(["not", "an", "object"]),  # line 9
    ]
    with pytest.raises(DatasetError) as info:
        load_dataset(write_jsonl(tmp_path / "bad.jsonl", rows))
    err = info.value
    assert sorted({n for n, _ in err.problems}) == [2, 3, 4, 6, 7, 8, 9]
    text = str(err)
    assert "7 malformed lines; nothing was run" in text
    assert "line 2: invalid JSON" in text
    assert "line 3: missing key 'type'" in text
    assert "line 4: 'lang' must be one of zh, en, got 'fr'" in text
    assert "line 4: 'must_include' must be a list" in text and "line 4: 'sources' must be a list" in text
    assert "line 6: duplicate id 'q1' (first used on line 1)" in text
    assert "line 7: an unanswerable question must have" in text
    assert "line 8: 'history' turn 0: 'role'" in text and "line 8: 'evidence' must be" in text
    assert "line 9: expected a JSON object" in text


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no questions"):
        load_dataset(tmp_path / "empty.jsonl")


# --------------------------------------------------------------------------- overrides

def test_config_overrides_apply_and_name_bad_keys(settings: Settings) -> None:
    s = apply_overrides(settings, ["retrieval.mode=dense", "answer.passages=8", "answer.rewrite_followups=false",
                                   "llm.base_url=null"])
    assert (s.retrieval.mode, s.answer.passages, s.answer.rewrite_followups, s.llm.base_url) == ("dense", 8, False, None)
    assert settings.retrieval.mode == "hybrid"  # a copy
    with pytest.raises(ConfigError, match="retrieval has no 'mod'. Valid keys there: .*mode"):
        apply_overrides(settings, ["retrieval.mod=dense"])
    with pytest.raises(ConfigError, match="Bad value for retrieval.mode: 'fast'"):
        apply_overrides(settings, ["retrieval.mode=fast"])
    with pytest.raises(ConfigError, match="Bad value for answer.passages"):
        apply_overrides(settings, ["answer.passages=0"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides(settings, ["retrieval.mode"])
    with pytest.raises(ConfigError, match="is a section"):
        apply_overrides(settings, ["answer=3"])


# --------------------------------------------------------------------------- CLI contract

def test_cli_malformed_dataset_exits_2_with_line_numbers_and_runs_nothing(tmp_path: Path, corpus_dir: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [json.dumps(q("q1")), "{oops", json.dumps(q("q1"))])
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--corpus", str(corpus_dir), "--questions", str(bad), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "line 2: invalid JSON" in result.output and "line 3: duplicate id 'q1'" in result.output
    assert not out.exists()


def test_cli_bad_config_exits_2(tmp_path: Path, corpus_dir: Path) -> None:
    good = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    result = CliRunner().invoke(main, ["eval", "--corpus", str(corpus_dir), "--questions", str(good), "--out",
                                       str(tmp_path / "out"), "--config", "retrieval.mode=fastest"])
    assert result.exit_code == 2
    assert "retrieval.mode" in result.output and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- end to end

def check_outputs(out: Path, n: int) -> dict[str, Any]:
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for key in CONTRACT_KEYS:
        assert key in report, key
        for group in ("by_lang", "by_type"):
            assert report[group], group
            for name, sub in report[group].items():
                assert key in sub, (group, name, key)
    assert set(report["by_lang"]) <= {"zh", "en"}
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == n == report["n"]
    for line in lines:
        assert {"id", "answer"} <= set(line)
        if line["answer"] is not None:
            assert {"answer", "language", "refused", "standalone_question", "citations", "retrieved", "engine",
                    "timings_ms"} <= set(line["answer"])
    for png in (ACCURACY_PNG, LATENCY_PNG, HIT_AT_K_PNG):
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in (out / "report.md").read_text(encoding="utf-8")
    return report


def test_run_eval_end_to_end_with_ablations_and_baseline(tmp_path: Path, corpus_dir: Path, settings: Settings) -> None:
    too_long = q("q6", question="长" * 2100)  # the Assistant rejects it: recorded, the run goes on
    questions = write_jsonl(tmp_path / "q.jsonl", [*QUESTIONS, too_long])
    out = tmp_path / "report"
    result = run_eval(corpus_dir, questions, out, settings, config_overrides=["answer.passages=4"],
                      ablations=True, baseline=True, embedder=HashEmbedder(), progress=False)
    report = check_outputs(out, 6)
    assert not settings.data_dir.exists()  # indexed in an isolated temporary folder
    assert report["errors"] == 1
    errored = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()][-1]
    assert errored["id"] == "q6" and errored["answer"] is None and "BadRequestError" in errored["error"]
    assert report["run"]["answer_passages"] == 4 and report["run"]["articles"] == 3
    assert report["citation_valid_rate"] in (1.0, None)
    assert len(report["hit_at_k"]["passage"]) == 10
    variants = {v["name"]: v for v in report["variants"]}
    assert set(variants) == {"retrieval-dense", "retrieval-lexical", "engine-llm", "rewrite-off", "baseline"}
    assert variants["engine-llm"]["skipped"]
    for name in ("retrieval-dense", "retrieval-lexical", "rewrite-off", "baseline"):
        assert variants[name]["n"] == 6 and "answer_accuracy" in variants[name]["by_type"]["factoid"]
        assert (out / "variants" / f"{name}.jsonl").exists()
    baseline_rows = [json.loads(x) for x in (out / "variants" / "baseline.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(len(r["answer"]["retrieved"]) <= 4 for r in baseline_rows if r["answer"])
    assert variants["baseline"]["citation_valid_rate"] in (1.0, None)
    assert result.main.ranking_mismatches == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    for section in ("## Overall", "## By language", "## By type", "## Ablations and baseline", "## Failed questions"):
        assert section in md
    assert "baseline: LangChain" in md and "skipped" in md


def test_limit_asks_only_the_first_questions_and_says_so(tmp_path: Path, corpus_dir: Path, settings: Settings) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    out = tmp_path / "report"
    run_eval(corpus_dir, questions, out, settings, limit=2, embedder=HashEmbedder(), progress=False)
    report = check_outputs(out, 2)
    assert [json.loads(x)["id"] for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()] == ["q1", "q2"]
    assert (report["run"]["limit"], report["run"]["questions_total"]) == (2, 5)
    assert "partial run**: the first 2 of 5 questions (`--limit 2`)" in (out / "report.md").read_text(encoding="utf-8")


def test_index_dir_is_kept_and_reused_without_embedding_again(tmp_path: Path, corpus_dir: Path,
                                                              settings: Settings) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    index_dir = tmp_path / "eval-index" / "tiny"
    embedder = HashEmbedder()
    first = run_eval(corpus_dir, questions, tmp_path / "r1", settings, embedder=embedder, index_dir=index_dir,
                     progress=False)
    embedded = embedder.texts_embedded  # chunks, and whatever else the index caches (sentence vectors)
    assert first.report["run"]["ingest"]["chunks_embedded"] > 0
    assert first.report["run"]["index_dir"] == str(index_dir) and (index_dir / "eval-index.json").is_file()
    assert not settings.data_dir.exists()  # still never the user's index
    second = run_eval(corpus_dir, questions, tmp_path / "r2", settings, embedder=embedder, index_dir=index_dir,
                      progress=False)
    ingest = second.report["run"]["ingest"]
    assert (ingest["chunks_embedded"], ingest["unchanged"]) == (0, 3) and embedder.texts_embedded == embedded
    assert second.report["answer_accuracy"] == first.report["answer_accuracy"]
    assert second.report["run"]["chunks"] == first.report["run"]["chunks"]


def test_index_dir_built_with_other_chunking_is_an_error_not_a_stale_index(
    tmp_path: Path, corpus_dir: Path, settings: Settings
) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", QUESTIONS[:1])
    index_dir = tmp_path / "eval-index" / "tiny"
    run_eval(corpus_dir, questions, tmp_path / "r1", settings, embedder=HashEmbedder(), index_dir=index_dir,
             progress=False)
    with pytest.raises(ConfigError, match=r"built with other settings.*Delete .*tiny or pass another --index-dir"):
        run_eval(corpus_dir, questions, tmp_path / "r2", settings, config_overrides=["chunking.max_chars=100"],
                 embedder=HashEmbedder(), index_dir=index_dir, progress=False)
    assert not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_cli_eval_with_the_real_embedder(tmp_path: Path, corpus_dir: Path) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "user-data"), "eval", "--corpus", str(corpus_dir),
                                       "--questions", str(questions), "--out", str(out), "--baseline"])
    assert result.exit_code == 0, result.output
    assert "answer_accuracy" in result.output
    report = check_outputs(out, 5)
    assert not (tmp_path / "user-data").exists()
    assert report["errors"] == 0 and report["citation_valid_rate"] in (1.0, None)
    assert report["retrieval_hit_at_5"] == 1.0  # 3 articles, 5 chunks: the gold article is always in the top 5


# --------------------------------------------------------------------------- ablations, baseline pieces

def test_ablation_specs_follow_the_settings(settings: Settings) -> None:
    specs = {s.name: s for s in ablation_specs(settings, "extractive")}
    assert set(specs) == {"retrieval-dense", "retrieval-lexical", "engine-llm", "rewrite-off"}
    assert specs["engine-llm"].skipped and specs["retrieval-lexical"].settings.retrieval.mode == "lexical"  # type: ignore[union-attr]
    assert specs["rewrite-off"].settings.answer.rewrite_followups is False  # type: ignore[union-attr]
    llm = apply_overrides(settings, ["llm.base_url=http://127.0.0.1:9/v1", "retrieval.mode=dense"])
    specs = {s.name: s for s in ablation_specs(llm, "extractive")}
    assert set(specs) == {"retrieval-hybrid", "retrieval-lexical", "engine-openai", "rewrite-off"}
    assert specs["engine-openai"].engine == "openai" and not specs["engine-openai"].skipped


def test_baseline_chunks_are_verbatim_with_offsets() -> None:
    sentences = [f"第{i}句话讲的是金什合作产业园的第{i}件事,内容比较长,用来凑足长度。" for i in range(120)]
    body = "\n\n".join("".join(sentences[i:i + 6]) for i in range(0, 120, 6))
    art = Article(article_id="long.md", title="t", body=body)
    docs = split_articles([art])
    assert len(docs) > 3
    for doc in docs:
        start = doc.metadata["start_index"]
        assert len(doc.page_content) <= 1000
        assert body[start:start + len(doc.page_content)] == doc.page_content
    passage = to_passage(docs[1], 0.5, ArticleMeta("long.md", "t"), 2)
    assert passage.chunk.text == body[passage.chunk.start:passage.chunk.end] and passage.chunk_id == "long.md#lc-0001"


def test_embedder_adapter_uses_passage_and_query_sides() -> None:
    emb = HashEmbedder()
    adapter = EmbedderAdapter(emb)
    docs = adapter.embed_documents(["金牛区", "什邡市"])
    assert len(docs) == 2 and len(docs[0]) == emb.dim and emb.texts_embedded == 2
    assert len(adapter.embed_query("金牛区")) == emb.dim
