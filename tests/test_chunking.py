from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pytest

from tongcheng_qa.chunking import chunk_article, split_sentences
from tongcheng_qa.corpus import content_hash, load_article, normalize_text
from tongcheng_qa.types import Article, Chunk

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
TITLE = "两地协作共建产业园,打通异地孵化与本土产业化联动发展通道"


def sents(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def make(body: str, title: str = "T", article_id: str = "a.md") -> Article:
    return Article(article_id=article_id, title=title, body=body,
                   content_hash=content_hash(title, None, None, None, body))


def check_invariants(article: Article, chunks: list[Chunk]) -> None:
    """Offsets honest, no surrounding whitespace, every visible character covered."""
    body = article.body
    covered = bytearray(len(body))
    for i, c in enumerate(chunks):
        assert c.index == i
        assert c.article_id == article.article_id
        assert c.chunk_id == f"{article.article_id}#{article.content_hash[:8]}-{i:04d}"
        assert c.text == body[c.start:c.end]
        assert c.text and c.text == c.text.strip()
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
        if i:
            assert c.start > chunks[i - 1].start  # progress, in body order
    missing = [ch for ch, cov in zip(body, covered) if not cov and not ch.isspace()]
    assert missing == [], f"uncovered text: {''.join(missing)[:80]!r}"


SEED_HEADINGS = {
    "同城融圈:1+1>2", "俯瞰金什合作产业园", "【成长故事】", "政策同享", "跨区域共建产业园区", "优势互补",
    "构建协同联动产业生态圈", "【新闻面对面】", "加强产业分工协作 实现跨区域产业建圈强链",
    "——访省同城化办常务副主任尹宏", "【新闻延伸】", "1500余家企业实现跨市域产业协作",
}


@pytest.fixture(scope="module")
def seed() -> Article:
    return load_article(CORPUS / "000_seed.md", CORPUS)


# ---------------------------------------------------------------- sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("金牛区与什邡市合作。项目落地了！真的吗？是的；好……结束",
         ["金牛区与什邡市合作。", "项目落地了！", "真的吗？", "是的；", "好……", "结束"]),
        ("“这家企业的入驻材料已经报给上级部门了。”1月16日上午,记者来了。",
         ["“这家企业的入驻材料已经报给上级部门了。”", "1月16日上午,记者来了。"]),
        ("他说:“好……”然后走了。真的？！对。",
         ["他说:“好……”", "然后走了。", "真的？！", "对。"]),
        ("年度经济贡献不低于2.7亿元。按照6∶4入股,股比6:4。",
         ["年度经济贡献不低于2.7亿元。", "按照6∶4入股,股比6:4。"]),
        ("联合申报国家高端航空装备集群;推动成眉特色食品发展;推动成资联合。",
         ["联合申报国家高端航空装备集群;", "推动成眉特色食品发展;", "推动成资联合。"]),
        ("The park opened in 2022. It has 4 firms! Why? Because revenue hit 2.7 billion yuan.",
         ["The park opened in 2022.", "It has 4 firms!", "Why?", "Because revenue hit 2.7 billion yuan."]),
        ("Beijing TT Aviation Technology Co. Ltd. builds drones. The U.S. market is small. Mr. Li Bo agreed.",
         ["Beijing TT Aviation Technology Co. Ltd. builds drones.", "The U.S. market is small.", "Mr. Li Bo agreed."]),
        ("Jiaozi Hengxin Co. Its stake is 60%. Firms, e.g. drone makers, moved in.",
         ["Jiaozi Hengxin Co.", "Its stake is 60%.", "Firms, e.g. drone makers, moved in."]),
        ('He said "we are ready." Then he left. (See the report.) Done.',
         ['He said "we are ready."', "Then he left.", "(See the report.)", "Done."]),
        ("See https://www.cdrb.com.cn/a.html?id=1;x=2 for details. Version 3.11 works.",
         ["See https://www.cdrb.com.cn/a.html?id=1;x=2 for details.", "Version 3.11 works."]),
        ("第一行没有句号\n\n  第二行。  \n第三行", ["第一行没有句号", "第二行。", "第三行"]),
        ("", []),
        ("   \n\n \t ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sents(text) == expected


def test_sentence_spans_are_trimmed_ordered_and_disjoint() -> None:
    text = "  第一句。  第二句！\n\n  Third one. Fourth?  \n"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["第一句。", "第二句！", "Third one.", "Fourth?"]
    for (a1, b1), (a2, _) in zip(spans, spans[1:]):
        assert b1 <= a2


def test_seed_sentences(seed: Article) -> None:
    s = sents(seed.body)
    assert "金什合作产业园由金牛区、什邡市合作共建。" in s
    assert any(x.startswith("金牛区城投集团与什邡市恒新公司按照6∶4入股") and x.endswith("运营。") for x in s)
    assert any("年度经济贡献不低于2.7亿元。" in x for x in s)
    quote = "“这家企业的入驻材料已经报给上级部门了。"
    assert quote in s
    assert any(x.endswith("做好准备。”") for x in s)


# ---------------------------------------------------------------- the seed article


def test_seed_chunks(seed: Article) -> None:
    chunks = chunk_article(seed, max_chars=320, overlap_sentences=1)
    check_invariants(seed, chunks)
    assert 6 <= len(chunks) <= 14
    assert all(len(c.text) <= 320 for c in chunks)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    # headings become context and are attached to the following text
    policy = [c for c in chunks if c.text.startswith("政策同享")]
    assert len(policy) == 1
    assert policy[0].context == f"{TITLE} · 【成长故事】 · 政策同享 · 跨区域共建产业园区"
    assert "走进金什合作产业园" in policy[0].text
    interview = next(c for c in chunks if c.text.startswith("【新闻面对面】"))
    assert interview.context.endswith("【新闻面对面】 · 加强产业分工协作 实现跨区域产业建圈强链 · ——访省同城化办常务副主任尹宏")
    assert chunks[0].context == f"{TITLE} · 【成长故事】"
    assert chunks[0].text.startswith("同城融圈:1+1>2")
    # a section change always starts a new chunk: nothing from 优势互补 sits with 【新闻面对面】
    assert not any("打破“经济区与行政区”壁垒" in c.text and "【新闻面对面】" in c.text for c in chunks)
    # the trailing byline is kept (with the last chunk)
    assert chunks[-1].text.endswith("成都日报锦观新闻记者 黄欢 周鸿 摄影 魏麟潇")
    # every chunk has text besides headings
    for c in chunks:
        assert any(line not in SEED_HEADINGS for line in c.text.split("\n") if line)


@pytest.mark.parametrize("max_chars", [60, 100, 200, 320, 1000])
def test_seed_size_limits(seed: Article, max_chars: int) -> None:
    chunks = chunk_article(seed, max_chars=max_chars)
    check_invariants(seed, chunks)
    for c in chunks:
        if len(c.text) > max_chars:
            # only one sentence, or one piece of a too-long sentence, with the headings
            # attached before it may exceed the limit
            text = "\n".join(line for line in c.text.split("\n") if line and line not in SEED_HEADINGS)
            assert len(sents(text)) == 1, c.text
            assert c.text.startswith(tuple(SEED_HEADINGS))
    if max_chars >= 1000:
        assert len(chunks) == 5  # one per section


def test_chunk_ids_change_with_content(seed: Article) -> None:
    changed = make(seed.body.replace("6∶4", "7∶3"), title=seed.title, article_id=seed.article_id)
    a, b = chunk_article(seed), chunk_article(changed)
    assert a[0].chunk_id != b[0].chunk_id
    assert a[0].chunk_id.startswith("000_seed.md#" + seed.content_hash[:8])


# ---------------------------------------------------------------- packing rules


def para(prefix: str, n: int, size: int) -> list[str]:
    """n Chinese sentences of exactly ``size`` chars."""
    return [(prefix + str(i)).ljust(size - 1, "字") + "。" for i in range(n)]


def test_overlap_repeats_last_sentence_within_section() -> None:
    sentences = para("甲", 8, 40)
    art = make("".join(sentences))
    chunks = chunk_article(art, max_chars=100, overlap_sentences=1)
    check_invariants(art, chunks)
    assert len(chunks) > 2
    for prev, nxt in zip(chunks, chunks[1:]):
        shared = art.body[nxt.start:prev.end]
        assert nxt.start < prev.end and shared in sentences  # exactly one whole sentence repeated
    no_overlap = chunk_article(art, max_chars=100, overlap_sentences=0)
    check_invariants(art, no_overlap)
    for prev, nxt in zip(no_overlap, no_overlap[1:]):
        assert nxt.start >= prev.end
    two = chunk_article(art, max_chars=130, overlap_sentences=2)
    for prev, nxt in zip(two, two[1:]):
        assert art.body[nxt.start:prev.end] == "".join(sentences[(nxt.start // 40):(prev.end // 40)])
        assert (prev.end - nxt.start) // 40 <= 2


def test_overlap_never_crosses_a_heading() -> None:
    body = "".join(para("甲", 3, 40)) + "\n\n政策同享\n\n" + "".join(para("乙", 3, 40))
    art = make(body)
    chunks = chunk_article(art, max_chars=100, overlap_sentences=1)
    check_invariants(art, chunks)
    second = [c for c in chunks if "政策同享" in c.text]
    assert len(second) == 1 and second[0].text.startswith("政策同享")
    assert all("乙" not in c.text for c in chunks if c.start < second[0].start)
    assert all("甲" not in c.text for c in chunks if c.start >= second[0].start)
    assert second[0].context == "T · 政策同享"
    assert all(c.context == "T" for c in chunks if c.start < second[0].start)


def test_prefers_paragraph_boundaries() -> None:
    p1, p2 = para("甲", 3, 50), para("乙", 3, 50)
    body = "".join(p1) + "\n\n" + "".join(p2)
    art = make(body)
    chunks = chunk_article(art, max_chars=220, overlap_sentences=0)
    check_invariants(art, chunks)
    # greedy packing would take 4 sentences (202 chars with the blank line); the chunk
    # ends at the end of the first paragraph instead
    assert chunks[0].text == "".join(p1)
    assert chunks[1].text == "".join(p2)


def test_long_sentence_split_at_commas_then_hard() -> None:
    clause = "金牛区与什邡市合作共建产业园区" + "，"
    long_sentence = clause * 30 + "结束。"
    hard = "无" * 700 + "。"
    art = make("开头。" + long_sentence + "\n\n" + hard + "短句。")
    chunks = chunk_article(art, max_chars=100, overlap_sentences=0)
    check_invariants(art, chunks)
    assert all(len(c.text) <= 100 for c in chunks)
    inside_long = [c for c in chunks if art.body.find(long_sentence) <= c.start < art.body.find(long_sentence) + len(long_sentence) - 5]
    assert len(inside_long) >= 4
    # cut near the limit at a comma, not mid-clause
    assert all(c.text.endswith(("，", "。")) for c in inside_long)
    assert all(len(c.text) >= 50 for c in inside_long[:-1])
    hard_pieces = [c for c in chunks if set(c.text) <= {"无"}]
    assert [len(c.text) for c in hard_pieces] == [100] * 7
    assert chunks[-1].text == "。短句。"  # the rest of the cut sentence, then the next one


def test_long_english_sentence_not_cut_mid_word() -> None:
    words = " ".join(f"word{i}" for i in range(200)) + "."
    art = make(words)
    chunks = chunk_article(art, max_chars=80, overlap_sentences=0)
    check_invariants(art, chunks)
    for c in chunks:
        assert len(c.text) <= 80
        assert re.fullmatch(r"(word\d+ )*word\d+\.?", c.text), c.text


def test_markdown_headings_nest() -> None:
    body = "# 金什合作产业园\n\n引言。\n\n## 政策同享\n\n第一节。\n\n### 细则\n\n第二节。\n\n## 优势互补\n\n第三节。"
    art = make(body, title="标题")
    chunks = chunk_article(art, max_chars=40, overlap_sentences=0)
    check_invariants(art, chunks)
    assert [(c.text.split("\n")[0], c.context) for c in chunks] == [
        ("# 金什合作产业园", "标题 · 金什合作产业园"),
        ("## 政策同享", "标题 · 金什合作产业园 · 政策同享"),
        ("### 细则", "标题 · 金什合作产业园 · 政策同享 · 细则"),
        ("## 优势互补", "标题 · 金什合作产业园 · 优势互补"),
    ]


def test_heading_detection_is_conservative() -> None:
    # a short line that ends with a full stop, a list item and a lead-in ending in a colon
    # are text, not headings
    body = "短句。\n\n- 列表项\n\n记者看到：\n\n正文内容在这里。"
    art = make(body)
    chunks = chunk_article(art, max_chars=320)
    check_invariants(art, chunks)
    assert [c.context for c in chunks] == ["T"]
    # a long line without punctuation is text too
    long_line = "没有标点的很长一行" * 8
    assert chunk_article(make(long_line + "\n\n正文。"), max_chars=320)[0].context == "T"


def test_only_headings_and_trailing_heading() -> None:
    art = make("只有一个标题")
    chunks = chunk_article(art)
    check_invariants(art, chunks)
    assert [c.text for c in chunks] == ["只有一个标题"]
    art2 = make("正文" * 30 + "。\n\n记者 黄欢 周鸿")
    chunks2 = chunk_article(art2, max_chars=62)
    check_invariants(art2, chunks2)
    assert chunks2[-1].text == "记者 黄欢 周鸿"  # does not fit with the last chunk: its own chunk
    chunks3 = chunk_article(art2, max_chars=100)
    assert len(chunks3) == 1 and chunks3[0].text.endswith("记者 黄欢 周鸿")


def test_heading_longer_combo_keeps_sentence_whole() -> None:
    heading = "【新闻面对面】\n\n加强产业分工协作 实现跨区域产业建圈强链"
    sentence = "成德眉资四市坚持强链条、育集群、建体系,不断加强产业分工协作。"
    art = make(heading + "\n\n" + sentence)
    chunks = chunk_article(art, max_chars=40, overlap_sentences=0)
    check_invariants(art, chunks)
    assert len(sentence) <= 40
    assert [c.text for c in chunks] == [heading + "\n\n" + sentence]


# ---------------------------------------------------------------- generated texts

ZH = ["金什合作产业园由金牛区、什邡市合作共建。", "营业收入合计将不低于100亿元，年度经济贡献不低于2.7亿元。",
      "按照6∶4入股！", "“这家企业的入驻材料已经报给上级部门了。”", "真的吗？？", "好……", "集群;推动",
      "他说:“下一步，我们拟在金牛区建立金什总部大厦。”", "（烟草）等重点领域；", "Drone maker TTA moved in.",
      "The U.S. firm Co. Ltd. agreed.", "Revenue: 2.7 billion yuan!", "Is it 6:4?", "e.g. drones", "",
      "很长的句子没有任何标点符号" * 12, "word " * 60, "、".join(["成都", "德阳", "眉山", "资阳"] * 20) + "。"]
HEADINGS = ["【成长故事】", "政策同享", "## Policy sharing", "# 金什", "跨区域共建产业园区", "Cooperation"]


def generate(rnd: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rnd.randint(1, 25)):
        r = rnd.random()
        if r < 0.15:
            parts.append(rnd.choice(HEADINGS))
        elif r < 0.25:
            parts.append(rnd.choice(["", " ", "\t", "\u3000"]))
        else:
            parts.append("".join(rnd.choice(ZH) for _ in range(rnd.randint(1, 6))))
    seps = ["\n\n", "\n", "\n\n\n", " \n \n", "\r\n"]
    return "".join(p + rnd.choice(seps) for p in parts)


@pytest.mark.parametrize("normalise", [True, False])
def test_generated_texts_keep_invariants(normalise: bool) -> None:
    rnd = random.Random(20240119)
    heading_lines = {h.lstrip("# ") for h in HEADINGS} | set(HEADINGS)
    for _ in range(400):
        body = generate(rnd)
        if normalise:
            body = normalize_text(body)
        if not body.strip():
            continue
        max_chars = rnd.choice([80, 120, 320, 600])
        overlap = rnd.choice([0, 1, 2])
        art = make(body, article_id=f"gen/{hashlib.md5(body.encode()).hexdigest()[:6]}.md")
        chunks = chunk_article(art, max_chars=max_chars, overlap_sentences=overlap)
        check_invariants(art, chunks)
        sentence_ends = {b for _, b in split_sentences(body)}
        long_spans = [(a, b) for a, b in split_sentences(body) if b - a > max_chars]
        for c in chunks:
            in_long = any(a < c.end < b for a, b in long_spans)
            assert c.end in sentence_ends or in_long, (body, c)
            if len(c.text) > max_chars:
                rest = [s for s in sents(c.text) if s not in heading_lines]
                assert len(rest) == 1, (c.text, max_chars)
