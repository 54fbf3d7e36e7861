"""Question analysis on hand-made cases: answer types, type words, city-abbreviation compounds.

These are the rules the relevance gate and the extractive engine stand on; each case is a
sentence shape news uses, not a gold-set question.
"""

from __future__ import annotations

import pytest

from tongcheng_qa.analysis import (
    CityCompounds,
    QuestionAnalysis,
    QuestionAnalyzer,
    TermStats,
    answer_type,
    coverage,
    type_fits,
)
from tongcheng_qa.glossary import Glossary, load_glossary
from tongcheng_qa.lexical import LexicalTokenizer

SENTENCES = [
    "金牛区城投集团与什邡市恒新公司按照6∶4入股合作组建合资公司。",
    "目前什邡市和金牛区明确了11个合作领域。",
    "什邡经开区管委会副主任李波说。",
    "李波告诉记者,园区聚焦航空航天、食品饮料等重点领域。",
    "推动成眉特色食品、锂电新材料等产业集群化发展。",
    "成德眉资四市坚持强链条、育集群、建体系,发展壮大先进制造业集群。",
    "两地共同制定产业融合发展政策和税收分成机制。",
]


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return load_glossary([])


@pytest.fixture(scope="module")
def analyzer(glossary: Glossary) -> QuestionAnalyzer:
    return QuestionAnalyzer(LexicalTokenizer(glossary.zh_terms()), glossary)


@pytest.fixture(scope="module")
def compounds(analyzer: QuestionAnalyzer) -> CityCompounds:
    return analyzer._compounds


def analyze(analyzer: QuestionAnalyzer, question: str, lang: str = "zh") -> QuestionAnalysis:
    return analyzer.analyze(question, lang, TermStats(SENTENCES))  # type: ignore[arg-type]


def best(analysis: QuestionAnalysis) -> tuple[str, float]:
    scored = [(s, coverage(analysis, s)[0]) for s in SENTENCES]
    return max(scored, key=lambda x: x[1])


# ---------------------------------------------------------------- answer types


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("两家公司的股比是多少?", "ratio"),
        ("本地企业占比多大?", "ratio"),
        ("What is the shareholding ratio of the joint venture?", "ratio"),
        ("文中李波担任什么职务?", "title"),
        ("What position does Li Bo hold?", "title"),
        ("What is Li Bo's title?", "title"),
        ("园区入驻了多少家企业?", "number"),
        ("协议是何时签订的?", "date"),
        ("谁负责园区运营?", "person"),
        ("What role does Jinniu play in the park?", "other"),  # a role is not a post someone holds
    ],
)
def test_answer_type(question: str, kind: str) -> None:
    assert answer_type(question) == kind


@pytest.mark.parametrize(
    ("sentence", "fits"),
    [
        ("按照6∶4入股", True),
        ("按照6：4入股", True),
        ("本地配套率达到60%", True),
        ("本地配套率超过三成", True),
        ("过半企业来自成都", True),
        ("明确了11个合作领域", False),  # a number, but not a proportion
        ("项目已经完成并投产", False),
        ("两市已形成合力", False),
    ],
)
def test_ratio_content(sentence: str, fits: bool) -> None:
    assert type_fits("ratio", sentence) is fits


@pytest.mark.parametrize(
    ("sentence", "fits"),
    [
        ("什邡经开区管委会副主任李波说", True),
        ("公司董事长王明介绍", True),
        ("银行行长表示", True),
        ("李波告诉记者", False),
        ("园区长期发展", False),  # 区长 inside 园区长期
        ("管理委员会成立", False),  # a committee, not a member
        ("董事会决定", False),
    ],
)
def test_title_content(sentence: str, fits: bool) -> None:
    assert type_fits("title", sentence) is fits


# ---------------------------------------------------------------- type words


def test_type_word_is_matched_by_content_of_its_kind(analyzer: QuestionAnalyzer) -> None:
    a = analyze(analyzer, "金牛区与什邡市的股比是多少?")
    assert a.answer_type == "ratio"
    assert any(t.kind == "ratio" for t in a.terms)
    sentence, cov = best(a)
    assert sentence == SENTENCES[0]  # the ratio, not the other sentence naming both places
    assert cov > coverage(a, SENTENCES[1])[0]


def test_a_ratio_about_something_else_does_not_answer(analyzer: QuestionAnalyzer) -> None:
    # The text names the tax-sharing mechanism and gives a shareholding ratio, but no tax
    # share: half credit for "some ratio" must not lift the wrong sentence over the bar.
    a = analyze(analyzer, "金牛区与什邡市的税收分成比例是多少?")
    assert coverage(a, SENTENCES[0])[0] < 0.55
    assert coverage(a, SENTENCES[6])[0] < 0.55


def test_title_question_prefers_the_sentence_with_the_post(analyzer: QuestionAnalyzer) -> None:
    a = analyze(analyzer, "李波担任什么职务?")
    assert a.answer_type == "title"
    assert best(a)[0] == SENTENCES[2]
    assert coverage(a, SENTENCES[3])[0] < coverage(a, SENTENCES[2])[0]


def test_english_type_word_from_the_glossary_is_not_an_untranslated_word(analyzer: QuestionAnalyzer) -> None:
    a = analyze(analyzer, "What is the shareholding ratio between the two companies?", "en")
    kinds = {t.forms[0]: t.kind for t in a.terms}
    assert kinds.get("股比") == "ratio"
    assert "shareholding" not in kinds and "ratio" not in kinds


# ---------------------------------------------------------------- city compounds


@pytest.mark.parametrize(
    ("char", "text", "credit"),
    [
        ("眉", "推动成眉特色食品", 1.0),
        ("成", "推动成眉特色食品", 1.0),
        ("德", "推动成眉特色食品", 0.0),  # Deyang is not named
        ("成", "成德眉资四市", 0.5),  # four cities: each only in part
        ("资", "德眉资三市", 2 / 3),
        ("渝", "成渝地区双城经济圈", 1.0),
        ("德", "合力共育成德高端能源装备集群", 1.0),
        ("德", "打造成德临港经济产业带", 1.0),  # 造成 is a word, but 打造 ends before 成
        ("资", "完成资金筹措", 0.0),  # 成 belongs to 完成
        ("德", "已经形成德阳特色", 0.0),  # a single 德 after 形成 is no compound
        ("眉", "形成德眉资协同格局", 2 / 3),  # the compound starts after 形成
        ("成", "降低融资成本", 0.0),
    ],
)
def test_city_compounds(compounds: CityCompounds, char: str, text: str, credit: float) -> None:
    assert compounds.credit(char, text) == pytest.approx(credit)


def test_compound_names_the_cities_of_an_english_question(analyzer: QuestionAnalyzer) -> None:
    a = analyze(analyzer, "Which industries will Chengdu and Meishan develop into clusters?", "en")
    # 成眉 names exactly these two cities; 成德眉资 names them among four.
    assert best(a)[0] == SENTENCES[4]
    assert coverage(a, SENTENCES[4])[0] > coverage(a, SENTENCES[5])[0]


def test_english_type_word_counts_only_where_it_sets_the_type(analyzer: QuestionAnalyzer) -> None:
    post = analyze(analyzer, "What title does Li Bo hold?", "en")
    plan = analyze(analyzer, "What is the title of the cooperation agreement?", "en")
    assert any(t.kind == "title" for t in post.terms)
    assert not any(t.kind for t in plan.terms)  # the name of a document, not a post
