"""Short answers: the span rules are general rules of written numbers, dates and ratios."""

from __future__ import annotations

import pytest

from tongcheng_qa.analysis import QuestionAnalysis, Term
from tongcheng_qa.spans import short_answer


def _analysis(kind: str, *terms: str, lang: str = "zh") -> QuestionAnalysis:
    return QuestionAnalysis(lang, kind, tuple(Term((t,), 1.0) for t in terms))  # type: ignore[arg-type]


def test_the_count_next_to_the_asked_words_wins_over_another_count() -> None:
    # Two counts in one sentence: the one beside 入驻 answers "how many moved in".
    a = _analysis("number", "入驻", "企业")
    assert short_answer(a, "青松园区入驻了几家企业?", "目前入驻企业7家,另有2家正在洽谈") == "7家"
    b = _analysis("number", "洽谈")
    assert short_answer(b, "有几家正在洽谈?", "目前入驻企业7家,另有2家正在洽谈") == "2家"


def test_a_number_the_question_gives_is_not_the_answer() -> None:
    a = _analysis("number", "投资")
    sentence = "2021年签约的项目总投资35亿元"
    assert short_answer(a, "2021年签约的项目总投资多少?", sentence) == "35亿元"


def test_one_with_a_measure_word_is_an_article_not_a_count() -> None:
    a = _analysis("number", "企业")
    assert short_answer(a, "有几家企业?", "一家来自外地的企业办理了手续") is None
    assert short_answer(a, "有几家企业?", "一排排厂房里有五家企业") == "五家"


def test_doubled_measure_word_means_every() -> None:
    a = _analysis("number", "厂房")
    assert short_answer(a, "有多少栋厂房?", "一栋栋厂房整齐排列") is None


@pytest.mark.parametrize(("sentence", "expected"), [
    ("双方按照3∶7入股合作", "3∶7"),
    ("外资占比达到12.5%", "12.5%"),
    ("本地企业占百分之四十", "百分之四十"),
])
def test_ratio_forms(sentence: str, expected: str) -> None:
    assert short_answer(_analysis("ratio", "入股", "占比"), "比例是多少?", sentence) == expected


@pytest.mark.parametrize(("sentence", "expected"), [
    ("2019年3月,两地签订合作协议", "2019年3月"),
    ("协议于5月20日签订", "5月20日"),
    ("The agreement was signed on 4 March 2021 in the city", "4 March 2021"),
])
def test_date_forms(sentence: str, expected: str) -> None:
    assert short_answer(_analysis("date", "签订", "agreement"), "什么时候签订?", sentence) == expected


def test_only_number_date_and_ratio_questions_get_a_span() -> None:
    for kind in ("person", "name", "title", "other"):
        assert short_answer(_analysis(kind, "园区"), "谁建设了园区?", "园区由甲公司投资10亿元建设") is None
