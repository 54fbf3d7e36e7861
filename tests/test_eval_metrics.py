"""Evaluation metrics: hand-made cases for each pure function and for the aggregation."""

from __future__ import annotations

import pytest

from tongcheng_qa.evaluation.metrics import (
    CONTRACT_KEYS,
    QuestionScore,
    RankedChunk,
    aggregate,
    answer_is_correct,
    answer_language,
    citation_precision,
    citation_valid_rate,
    evidence_recall_at_k,
    first_rank,
    fold,
    hit_at_k,
    hit_curve,
    language_match,
    letter_counts,
    missing_items,
    passage_first_rank,
    passage_hit_at_k,
    passage_reciprocal_rank,
    percentile,
    reciprocal_rank,
    refusal_is_correct,
    satisfies_must_include,
    score_question,
    short_answer_is_correct,
    short_answer_text,
    summarize,
)
from tongcheng_qa.types import Answer, Citation

BODY = "金牛区城投集团与什邡市恒新公司按照6∶4入股合作。目前入驻企业4家,另有3家企业正在洽谈。"


def cite(quote: str, start: int, article: str = "a.md", n: int = 1) -> Citation:
    return Citation(n=n, article_id=article, title="t", date=None, source=None, url=None, chunk_id=f"{article}#0",
                    quote=quote, start=start, end=start + len(quote))


def answer(text: str, *, refused: bool = False, citations: tuple[Citation, ...] = (), total: float = 10.0) -> Answer:
    return Answer(answer=text, language="zh", refused=refused, standalone_question="q", citations=citations,
                  timings_ms={"total": total})


# --------------------------------------------------------------------------- folding, must_include

def test_fold_width_case_and_ratio_colon() -> None:
    assert fold("６∶４") == "6:4"
    assert fold("６：４") == "6:4"
    assert fold("ＡＢＣ Jinniu") == "abc jinniu"
    assert fold("１５００余家，") == "1500余家,"


def test_must_include_all_items_alternatives_and_folding() -> None:
    text = "据报道:双方按照６∶４入股合作,目前入驻企业四家。"
    assert satisfies_must_include(text, ["6:4", ["4家", "四家"]])
    assert not satisfies_must_include(text, ["6:4", "3家"])
    assert missing_items(text, ["6:4", ["3家", "三家"], "入股"]) == [("3家", "三家")]
    assert satisfies_must_include("The park hosts FOUR firms.", [["4", "four"]])
    assert satisfies_must_include("ten  billion\nyuan", ["ten billion yuan"])  # whitespace runs collapse
    assert satisfies_must_include("anything", [])


def test_must_include_ignores_citation_markers() -> None:
    assert not satisfies_must_include("合作领域很多[11]。", ["11"])
    assert satisfies_must_include("明确了11个合作领域[1]。", ["11"])


def test_answer_correctness_and_refusal_from_the_flag() -> None:
    assert answer_is_correct(answer("入驻企业4家[1]"), [["4家"]])
    # a refusal is wrong for an answerable question even if its text happens to hold the item
    assert not answer_is_correct(answer("没有找到4家的答案", refused=True), [["4家"]])
    assert refusal_is_correct(answer("抱歉", refused=True), answerable=False)
    assert not refusal_is_correct(answer("Sorry, the sources don't say.", refused=False), answerable=False)
    assert not refusal_is_correct(answer("x", refused=True), answerable=True)


# --------------------------------------------------------------------------- short answer

def test_short_answer_is_the_engines_short_answer_else_the_first_line() -> None:
    two_lines = "\n  \n据成都日报报道:“目前入驻企业4家。” [1]\n另有3家企业正在洽谈[2]"
    assert short_answer_text(answer(two_lines)) == "据成都日报报道:“目前入驻企业4家。” [1]"  # blank lines skipped
    with_short = Answer(answer=two_lines, language="zh", refused=False, standalone_question="q", short_answer="4家")
    assert short_answer_text(with_short) == "4家"
    blank_short = Answer(answer="6∶4 [1]", language="zh", refused=False, standalone_question="q", short_answer=" ")
    assert short_answer_text(blank_short) == "6∶4 [1]"  # a blank short answer is not set


def test_short_answer_correctness_looks_at_the_short_answer_only() -> None:
    text = "据报道,金什合作产业园由两地共建[1]\n目前入驻企业4家[2]"
    assert answer_is_correct(answer(text), ["4家"])
    assert not short_answer_is_correct(answer(text), ["4家"])  # the fact is only on the second line
    assert short_answer_is_correct(answer("目前入驻企业４家[1]\n..."), ["4家"])  # same folding as answer_accuracy
    short = Answer(answer=text, language="zh", refused=False, standalone_question="q", short_answer="4家")
    assert short_answer_is_correct(short, ["4家"]) and not short_answer_is_correct(short, ["4家", "共建"])
    refused = Answer(answer="抱歉", language="zh", refused=True, standalone_question="q", short_answer="4家")
    assert not short_answer_is_correct(refused, ["4家"])


# --------------------------------------------------------------------------- language

def test_language_is_zh_when_cjk_is_more_than_30_percent_of_the_letters() -> None:
    assert letter_counts("abc 金牛 [12] ＡＢ 6∶4") == (2, 5)  # full-width Latin counts as Latin; digits are no letters
    assert answer_language("金牛区abcdefg") == "en"  # 3 of 10 letters: exactly 30% is not more
    assert answer_language("金牛区abcdef") == "zh"  # 3 of 9
    assert answer_language("4 companies [1]") == "en"


def test_english_frame_around_a_long_chinese_quote_is_zh() -> None:
    quote = "目前入驻企业4家,另有3家企业正在洽谈。"
    framed = f"According to Chengdu Daily (2024-01-19): “{quote}” [1]"
    assert answer_language(framed) == "zh"  # quotes count: the reader mostly reads Chinese
    assert answer_language("According to Chengdu Daily (2024-01-19), four firms have moved in [1].") == "en"
    assert language_match(framed, "zh") and not language_match(framed, "en")


def test_quote_only_chinese_answers_are_zh() -> None:
    """Issue 11: CMRC answers are verbatim Chinese quotes, and scored 0.08 under the old rule."""
    assert language_match("尤金袋鼠分布在澳洲南部岛屿及西岸地区[1]", "zh")
    assert language_match("北京中航智科技有限公司(TT Aviation)入驻了金什合作产业园[1]", "zh")
    assert answer_language("Sorry, the sources don't say. Closest sources: “两地协作共建产业园” (成都日报).") == "en"


def test_an_answer_without_letters_matches_either_language() -> None:
    for text in ("6∶4 [1]", "2024-01-19", "100 [1][2]", ""):
        assert answer_language(text) is None
        assert language_match(text, "zh") and language_match(text, "en")


# --------------------------------------------------------------------------- citations

def test_citation_precision_and_validity() -> None:
    good = cite("目前入驻企业4家", BODY.index("目前入驻企业4家"))
    shifted = cite("目前入驻企业4家", BODY.index("目前入驻企业4家") + 1)
    other = cite("x", 0, article="b.md")
    bodies = {"a.md": BODY}
    assert citation_precision([good, other], ["a.md"]) == 0.5
    assert citation_precision([], ["a.md"]) is None
    assert citation_valid_rate([good, shifted], bodies.get) == 0.5
    assert citation_valid_rate([other], bodies.get) == 0.0  # unknown article: invalid
    assert citation_valid_rate([], bodies.get) is None


# --------------------------------------------------------------------------- retrieval

def test_article_hit_and_reciprocal_rank() -> None:
    ranked = ["b.md", "b.md", "a.md", "c.md"]
    assert first_rank(ranked, ["a.md", "c.md"]) == 3
    assert hit_at_k(ranked, ["a.md"], 3) and not hit_at_k(ranked, ["a.md"], 2)
    assert reciprocal_rank(ranked, ["a.md"]) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, ["z.md"]) == 0.0


def test_passage_hit_rank_and_evidence_recall() -> None:
    texts = ["金牛区城投集团", "目前入驻企业4家,另有3家企业正在洽谈", "按照6∶4入股合作"]
    assert passage_first_rank(texts, ["6∶4入股"]) == 3
    assert passage_first_rank(texts, ["6:4入股"]) is None  # evidence matches verbatim, no folding
    assert passage_hit_at_k(texts, ["另有3家企业"], 2) and not passage_hit_at_k(texts, ["6∶4入股"], 2)
    assert passage_reciprocal_rank(texts, ["目前入驻企业4家", "6∶4入股"]) == 0.5
    assert evidence_recall_at_k(texts, ["目前入驻企业4家", "6∶4入股"], 2) == 0.5
    assert evidence_recall_at_k(texts, [], 5) is None


def test_percentile_linear_interpolation() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 0.0, 20.0, 30.0, 40.0], 95) == pytest.approx(38.0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


# --------------------------------------------------------------------------- one question, aggregation

def _score(qid: str, lang: str, qtype: str, ans: Answer | None, *, must: list[str] | None = None,
           sources: tuple[str, ...] = ("a.md",), evidence: list[str] | None = None) -> QuestionScore:
    answerable = qtype != "unanswerable"
    ranking = [RankedChunk("b.md", "other"), RankedChunk("a.md", BODY)]
    return score_question(
        qid=qid, lang=lang, qtype=qtype, answerable=answerable, must_include=must or [],
        sources=sources if answerable else (), evidence=evidence if answerable else None, answer=ans,
        ranking=ranking, body_of={"a.md": BODY}.get, error=None if ans else "RuntimeError: boom",
    )


def test_score_question_fields() -> None:
    quote = "目前入驻企业4家"
    s = _score("q1", "zh", "factoid", answer(f"据报道:{quote}[1]", citations=(cite(quote, BODY.index(quote)),)),
               must=["4家"], evidence=["另有3家"])
    assert (s.correct, s.refused, s.article_rank, s.passage_rank) == (True, False, 2, 2)
    assert (s.n_citations, s.n_gold_citations, s.n_valid_citations, s.language_ok) == (1, 1, 1, True)
    assert s.latency_ms == 10.0 and s.refusal_correct is None and s.short_correct is True
    err = _score("q2", "en", "factoid", None, must=["x"])
    assert err.error and err.correct is False and err.language_ok is None and err.latency_ms is None
    assert err.short_correct is False  # an error is wrong for the short answer too
    unanswerable = _score("q3", "en", "unanswerable", answer("Sorry.", refused=True))
    assert unanswerable.short_correct is None


def test_aggregate_keys_nulls_and_breakdowns() -> None:
    quote = "目前入驻企业4家"
    rows = [
        _score("q1", "zh", "factoid", answer(f"据报道:{quote}[1]", citations=(cite(quote, BODY.index(quote)),),
                                              total=10), must=["4家"], evidence=["目前入驻企业"]),
        _score("q2", "zh", "factoid", answer("抱歉,没有找到。", refused=True, total=20), must=["3家"]),
        _score("q3", "en", "unanswerable", answer("Sorry, the sources don't say.", refused=True, total=30)),
        _score("q4", "en", "factoid", None, must=["x"]),
    ]
    report = aggregate(rows)
    for key in CONTRACT_KEYS:
        assert key in report and all(key in g for g in report["by_lang"].values())
        assert all(key in g for g in report["by_type"].values())
    assert report["n"] == 4
    assert report["answer_accuracy"] == pytest.approx(1 / 3, abs=1e-4)  # the errored question counts as wrong
    assert report["short_answer_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["false_refusal_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["refusal_accuracy"] == 1.0
    assert report["retrieval_hit_at_5"] == 1.0 and report["mrr"] == 0.5
    assert report["passage_hit_at_5"] == 1.0  # only q1 has evidence
    assert report["citation_precision"] == 1.0 and report["citation_valid_rate"] == 1.0
    assert report["language_match"] == 1.0  # q4 (error) is left out
    assert report["latency_ms_p50"] == 20.0
    assert report["errors"] == 1
    # a metric with no eligible question is None, not 0
    assert report["by_type"]["unanswerable"]["answer_accuracy"] is None
    assert report["by_type"]["factoid"]["refusal_accuracy"] is None
    assert report["by_lang"]["en"]["citation_precision"] is None
    assert list(report["by_type"]) == ["factoid", "unanswerable"]


def test_short_answer_accuracy_overall_and_in_breakdowns() -> None:
    rows = [
        _score("q1", "zh", "factoid", answer("目前入驻企业4家[1]\n另有3家[2]"), must=["4家"]),
        _score("q2", "zh", "multi_hop", answer("两地共建产业园[1]\n目前入驻企业4家[2]"), must=["4家"]),
        _score("q3", "en", "factoid", Answer(answer="Four firms have moved in.\nIn Chinese: 4家 [1]", language="en",
                                             refused=False, standalone_question="q", short_answer="4家"),
               must=["4家"]),
        _score("q4", "en", "unanswerable", answer("Sorry, the sources don't say.", refused=True)),
    ]
    report = aggregate(rows)
    assert report["answer_accuracy"] == 1.0
    assert report["short_answer_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["by_lang"]["zh"]["short_answer_accuracy"] == 0.5
    assert report["by_lang"]["en"]["short_answer_accuracy"] == 1.0
    assert report["by_type"]["multi_hop"]["short_answer_accuracy"] == 0.0
    assert report["by_type"]["unanswerable"]["short_answer_accuracy"] is None


def test_summarize_empty_group_is_all_null() -> None:
    s = summarize([])
    assert s["n"] == 0 and s["errors"] == 0
    assert all(v is None for k, v in s.items() if k not in ("n", "errors"))


def test_hit_curve_levels() -> None:
    rows = [QuestionScore("a", "zh", "factoid", True, has_sources=True, article_rank=1, has_evidence=True, passage_rank=3),
            QuestionScore("b", "zh", "factoid", True, has_sources=True, article_rank=None, has_evidence=False)]
    assert hit_curve(rows, "article", 3) == [0.5, 0.5, 0.5]
    assert hit_curve(rows, "passage", 3) == [0.0, 0.0, 1.0]
    assert hit_curve([], "passage", 2) == [None, None]
    with pytest.raises(ValueError):
        hit_curve(rows, "chunk")


def test_must_include_matching_ignores_spaces_like_the_datasets_define_it() -> None:
    from tongcheng_qa.evaluation.metrics import satisfies_must_include

    assert satisfies_must_include("共进行了136次试验[1]", [["136 次", "136 times"]])
    assert satisfies_must_include("Revenue of 10 Billion yuan [2]", ["10billion"])
    assert not satisfies_must_include("共进行了13 6次", ["1366次"])
