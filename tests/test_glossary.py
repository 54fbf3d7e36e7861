from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tongcheng_qa.errors import CorpusError
from tongcheng_qa.glossary import Glossary, GlossaryEntry, load_glossary, parse_glossary

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
HEADER = "zh\ten\tkind\taliases\n"


@pytest.fixture(scope="module")
def g() -> Glossary:
    return load_glossary([CORPUS / "glossary.tsv"])


@pytest.fixture(scope="module")
def builtin() -> Glossary:
    return load_glossary([])


def zhs(entries: list[GlossaryEntry]) -> list[str]:
    return [e.zh for e in entries]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- data


def test_builtin_glossary_covers_the_region(builtin: Glossary) -> None:
    assert 150 <= len(builtin) <= 400
    expected = {
        "金牛区": "Jinniu District", "什邡": "Shifang", "成德眉资同城化": "Chengdu-Deyang-Meishan-Ziyang integration",
        "金什合作产业园": "Jinshi cooperative industrial park", "成都都市圈": "Chengdu metropolitan area",
        "什邡经开区": "Shifang Economic Development Zone", "德阳": "Deyang", "眉山": "Meishan", "资阳": "Ziyang",
        "成都": "Chengdu", "产业园": "industrial park", "招商": "investment promotion", "同城化": "integration",
        "无人机": "drone", "锂电": "lithium battery", "医疗器械": "medical devices", "产业链": "industrial chain",
        "链主企业": "chain-leader enterprise", "股比": "shareholding ratio", "入股": "equity stake",
        "总部": "headquarters", "研发": "R&D", "生产制造": "manufacturing", "营业收入": "operating revenue",
        "税收": "tax revenue",
    }
    for zh, en in expected.items():
        assert builtin.english_for(zh) == en, zh
    chengdu = ["锦江区", "青羊区", "金牛区", "武侯区", "成华区", "龙泉驿区", "青白江区", "新都区", "温江区",
               "双流区", "郫都区", "新津区", "简阳市", "都江堰市", "彭州市", "邛崃市", "崇州市", "金堂县",
               "大邑县", "蒲江县"]
    deyang = ["旌阳区", "罗江区", "广汉市", "什邡市", "绵竹市", "中江县"]
    meishan = ["东坡区", "彭山区", "仁寿县", "洪雅县", "丹棱县", "青神县"]
    ziyang = ["雁江区", "安岳县", "乐至县"]
    for zh in chengdu + deyang + meishan + ziyang:
        assert builtin.english_for(zh), zh
    # the packaged file is general: article-specific people are in the corpus glossary
    assert builtin.english_for("李波") is None


def test_corpus_glossary_adds_article_entities(g: Glossary, builtin: Glossary) -> None:
    assert len(g) > len(builtin)
    assert g.english_for("李波") == "Li Bo"
    assert g.english_for("交子恒新科技发展有限责任公司") == "Jiaozi Hengxin Technology Development Co., Ltd."
    assert g.english_for("交子恒新") == "Jiaozi Hengxin Technology Development Co., Ltd."  # alias
    assert g.english_for("什邡市") == "Shifang"
    assert g.english_for("不存在的词") is None


def test_every_entry_is_well_formed(g: Glossary) -> None:
    for e in g:
        assert e.zh and e.en and e.kind
        assert all(a == a.strip() and a for a in e.aliases)
        assert "\t" not in e.en


# ---------------------------------------------------------------- parsing


def test_later_files_override_earlier(tmp_path: Path) -> None:
    a = write(tmp_path / "a.tsv", HEADER + "金牛区\tJinniu Qu\tdistrict\t\n新词\tNew term\tterm\tnewish|新词语\n")
    b = write(tmp_path / "b.tsv", HEADER + "金牛区\tJinniu\tdistrict\tJN\n")
    glossary = load_glossary([a, b])
    assert glossary.english_for("金牛区") == "Jinniu"
    assert glossary.english_for("新词语") == "New term"
    assert zhs(glossary.expand_english("about JN and newish things")) == ["金牛区", "新词"]
    only_a = load_glossary([a], include_builtin=False)
    assert len(only_a) == 2 and only_a.english_for("金牛区") == "Jinniu Qu"
    assert only_a.english_for("成都") is None


def test_optional_aliases_column_comments_and_blank_lines(tmp_path: Path) -> None:
    text = "# comment\n\nzh\ten\tkind\n# another\n成都\tChengdu\tcity\n\n德阳\tDeyang\t\n"
    entries = parse_glossary(text, "x.tsv")
    assert entries == [GlossaryEntry("成都", "Chengdu", "city", ()), GlossaryEntry("德阳", "Deyang", "term", ())]


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("zh en kind aliases\n成都\tChengdu\tcity\t\n", ":1", "header"),
        (HEADER + "成都\tChengdu\tcity\t\n德阳 Deyang city\n", ":3", "TAB"),
        (HEADER + "成都\tChengdu\tcity\tx\textra\n", ":2", "columns"),
        (HEADER + "成都\t\tcity\t\n", ":2", "`zh` and `en`"),
        (HEADER + "Chengdu\t成都\tcity\t\n", ":2", "Chinese"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: str, where: str, needle: str) -> None:
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(CorpusError) as info:
        load_glossary([path], include_builtin=False)
    assert info.value.file == f"{path}{where}"
    assert needle in info.value.reason


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        load_glossary([tmp_path / "nope.tsv"])
    assert len(load_glossary([tmp_path / "nope.tsv"], missing_ok=True)) == len(load_glossary([]))
    with pytest.raises(CorpusError, match="empty"):
        load_glossary([write(tmp_path / "empty.tsv", "# only a comment\n")], include_builtin=False)


# ---------------------------------------------------------------- matching


def test_expand_english_finds_entities(g: Glossary) -> None:
    q = "What shareholding ratio did Jinniu District and Shifang use for the Jinshi cooperative industrial park?"
    assert zhs(g.expand_english(q)) == ["股比", "金牛区", "什邡", "金什合作产业园"]


def test_expand_english_case_insensitive_whole_word(g: Glossary) -> None:
    assert zhs(g.expand_english("JINNIU DISTRICT")) == ["金牛区"]
    assert g.expand_english("Jinniuville and Chengduese") == []
    assert zhs(g.expand_english("jinniu")) == ["金牛区"]


def test_expand_english_longest_match_no_overlap(g: Glossary) -> None:
    assert zhs(g.expand_english("the Chengdu metropolitan area")) == ["成都都市圈"]
    matches = g.match_english("Jinshi cooperative industrial park")
    assert [(m.entry.zh, m.surface) for m in matches] == [("金什合作产业园", "Jinshi cooperative industrial park")]
    assert zhs(g.expand_english("an industrial park in Chengdu")) == ["产业园", "成都"]


def test_longest_wins_even_when_it_starts_later() -> None:
    glossary = Glossary([
        GlossaryEntry("甲乙", "alpha beta"),
        GlossaryEntry("乙丙丁", "beta gamma delta"),
        GlossaryEntry("甲", "alpha"),
    ])
    assert [(m.entry.zh, m.surface) for m in glossary.match_english("alpha beta gamma delta")] == [
        ("甲", "alpha"), ("乙丙丁", "beta gamma delta")]
    assert [m.surface for m in glossary.match_chinese("甲乙丙丁")] == ["甲", "乙丙丁"]


def test_expand_english_variants(g: Glossary) -> None:
    integration = ["成德眉资同城化"]
    assert zhs(g.expand_english("Chengdu-Deyang-Meishan-Ziyang integration")) == integration
    assert zhs(g.expand_english("Chengdu Deyang Meishan Ziyang integration")) == integration
    assert zhs(g.expand_english("chengdu–deyang–meishan–ziyang Integration")) == integration
    assert zhs(g.expand_english("industrial parks")) == ["产业园"]
    assert zhs(g.expand_english("Shifang's park")) == ["什邡", "园区"]
    assert zhs(g.expand_english("Shifang’s drones")) == ["什邡", "无人机"]
    assert zhs(g.expand_english("digital economies")) == ["数字经济"]
    assert zhs(g.expand_english("chain-leader enterprises")) == ["链主企业"]
    assert zhs(g.expand_english("chain leader enterprises")) == ["链主企业"]
    assert zhs(g.expand_english("its R&D center")) == ["研发中心"]
    m = g.match_english("Which firm is Jiaozi Hengxin Technology Development Co., Ltd.?")
    assert [x.entry.zh for x in m] == ["交子恒新科技发展有限责任公司"]


def test_terms_do_not_span_punctuation(g: Glossary) -> None:
    matches = g.match_english("Jinniu, District heads")
    assert [(m.entry.zh, m.surface) for m in matches][0] == ("金牛区", "Jinniu")
    assert all(m.surface != "Jinniu, District" for m in matches)


def test_find_chinese(g: Glossary) -> None:
    text = "金牛区城投集团与什邡市恒新公司按照6∶4入股合作组建交子恒新科技发展有限责任公司,共建金什合作产业园。"
    assert zhs(g.find_chinese(text)) == [
        "金牛区城投集团", "恒新公司", "入股", "交子恒新科技发展有限责任公司", "共建", "金什合作产业园"]
    assert zhs(g.find_chinese("成都都市圈与成都")) == ["成都都市圈", "成都"]
    assert zhs(g.find_chinese("什邡市和金牛区,还有什邡")) == ["什邡", "金牛区"]  # deduplicated
    spans = [(m.start, m.end, m.surface) for m in g.match_chinese("去什邡经开区")]
    assert spans == [(1, 6, "什邡经开区")]


def test_zh_terms_for_jieba(g: Glossary) -> None:
    terms = g.zh_terms()
    assert "金什合作产业园" in terms and "什邡市" in terms and "交子恒新" in terms
    assert len(terms) == len(set(terms))
    assert [len(t) for t in terms] == sorted((len(t) for t in terms), reverse=True)


def test_matching_stays_fast_with_10k_entries(g: Glossary) -> None:
    rnd = random.Random(7)
    syllables = ["jin", "niu", "shi", "fang", "de", "yang", "mei", "shan", "zi", "cheng", "du", "long", "xin"]
    entries = list(g)
    for _ in range(10_000):
        en = " ".join("".join(rnd.choice(syllables) for _ in range(2)).title() for _ in range(rnd.randint(1, 4)))
        zh = "".join(chr(0x4E00 + rnd.randrange(20_000)) for _ in range(rnd.randint(2, 8)))
        entries.append(GlossaryEntry(zh, f"{en} {rnd.choice(['Park', 'Group', 'District'])}"))
    big = Glossary(entries)
    q_en = "What shareholding ratio did Jinniu District's urban investment group and Shifang use in the Jinshi park?"
    q_zh = "金牛区城投集团与什邡市恒新公司按照什么股比入股合作组建交子恒新科技发展有限责任公司?"
    assert "金牛区城投集团" in zhs(big.expand_english(q_en))
    start = time.perf_counter()
    for _ in range(200):
        big.match_english(q_en)
        big.match_chinese(q_zh)
    per_question_ms = (time.perf_counter() - start) / 200 * 1000
    assert per_question_ms < 2.0
