from __future__ import annotations

import re
from pathlib import Path

import pytest

from tongcheng_qa.corpus import (
    SUPPORTED_SUFFIXES,
    content_hash,
    discover,
    load_article,
    load_corpus,
    normalize_text,
)
from tongcheng_qa.errors import CorpusError

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
SEED_TXT = Path("/work/shared/seed/chengdu-daily-2024-01-19-jinshi-park.txt")
SEED_TITLE = "两地协作共建产业园,打通异地孵化与本土产业化联动发展通道"


def write(path: Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode(encoding)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- the seed article


def test_seed_article_metadata_and_body() -> None:
    articles, errors = load_corpus(CORPUS)
    assert errors == []
    seed = {a.article_id: a for a in articles}["000_seed.md"]
    assert seed.title == SEED_TITLE
    assert seed.date == "2024-01-19"
    assert seed.source == "成都日报"
    assert seed.url == "https://www.cdrb.com.cn/epaper/cdrbpc/202401/19/c126872.html"
    assert seed.date_int == 20240119
    assert re.fullmatch(r"[0-9a-f]{64}", seed.content_hash)
    # page furniture gone, wording kept
    assert "国内统一刊号" not in seed.body and "-->" not in seed.body
    assert "2024年01月19日" not in seed.body
    assert SEED_TITLE not in seed.body
    assert seed.body.startswith("同城融圈:1+1>2\n\n俯瞰金什合作产业园\n\n【成长故事】\n\n从成都出发")
    assert seed.body.endswith("成都日报锦观新闻记者 黄欢 周鸿 摄影 魏麟潇")
    assert "按照6∶4入股合作组建交子恒新科技发展有限责任公司" in seed.body
    assert "\n\n\n" not in seed.body


def test_glossary_file_in_corpus_is_not_an_article() -> None:
    ids = [p.relative_to(CORPUS).as_posix() for p in discover(CORPUS)]
    assert "000_seed.md" in ids
    assert not any(i.startswith("glossary.") for i in ids)


@pytest.mark.skipif(not SEED_TXT.exists(), reason="original seed text not available")
def test_seed_body_lines_are_verbatim_from_the_source() -> None:
    source_lines = SEED_TXT.read_text(encoding="utf-8").split("\n")
    seed = load_article(CORPUS / "000_seed.md", CORPUS)
    body_lines = [line for line in seed.body.split("\n") if line]
    expected = [line for line in source_lines[10:] if line.strip() and not line.startswith("-->")]
    assert body_lines == expected


# ---------------------------------------------------------------- normalisation


def test_normalize_text_rules() -> None:
    raw = "\ufeff第一段\u200b内容。  \r\n\r\n\r\n\r\n第二段\x07，“引号”６∶４.\t \rCafe\u0301\n"
    out = normalize_text(raw)
    assert out == "第一段内容。\n\n第二段，“引号”６∶４.\nCafé"
    assert normalize_text(out) == out  # idempotent
    # two blank lines collapse to one; a single blank line stays
    assert normalize_text("a\n\n\nb\n\nc") == "a\n\nb\n\nc"
    # tabs inside a line survive, full-width punctuation is not NFKC-folded
    assert normalize_text("a\tb：（１）") == "a\tb：（１）"


def test_content_hash_covers_metadata_and_body() -> None:
    base = content_hash("t", "2024-01-19", "s", "u", "body")
    assert base == content_hash("t", "2024-01-19", "s", "u", "body")
    assert base != content_hash("t", "2024-01-20", "s", "u", "body")
    assert base != content_hash("t", "2024-01-19", "s", "u", "body!")
    assert base != content_hash("t2", "2024-01-19", "s", "u", "body")
    assert base != content_hash("t", "2024-01-19", None, "u", "body")


# ---------------------------------------------------------------- markdown


def test_markdown_front_matter_date_object_and_string(tmp_path: Path) -> None:
    a = write(tmp_path / "a.md", "---\ntitle: 标题A\ndate: 2024-01-19\nsource: 成都日报\n---\n\n正文。\n")
    b = write(tmp_path / "b.md", "---\ntitle: \"B: quoted\"\ndate: '2023-12-01'\nurl: https://x.cn/b\n---\n正文B。\n")
    art_a = load_article(a, tmp_path)
    art_b = load_article(b, tmp_path)
    assert (art_a.title, art_a.date, art_a.source, art_a.url, art_a.body) == ("标题A", "2024-01-19", "成都日报", None, "正文。")
    assert (art_b.title, art_b.date, art_b.url) == ("B: quoted", "2023-12-01", "https://x.cn/b")


def test_markdown_title_fallbacks(tmp_path: Path) -> None:
    h1 = write(tmp_path / "with-h1.md", "# 金什合作产业园\n\n正文。")
    stem = write(tmp_path / "just-text.md", "正文。")
    assert load_article(h1, tmp_path).title == "金什合作产业园"
    assert load_article(stem, tmp_path).title == "just-text"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("---\ntitle: [unclosed\n---\nbody", "not valid YAML"),
        ("---\ntitle: a: b: c\n---\nbody", "not valid YAML"),
        ("---\ntitle: x\nbody without end", "no closing '---'"),
        ("---\n- a\n- b\n---\nbody", "mapping"),
        ("---\ndate: 19/01/2024\n---\nbody", "YYYY-MM-DD"),
        ("---\ndate: 2024-02-30\n---\nbody", "YYYY-MM-DD"),
        ("---\ntitle: [a, b]\n---\nbody", "single value"),
    ],
)
def test_broken_front_matter_names_file_and_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path / "sub" / "broken.md", text)
    with pytest.raises(CorpusError) as info:
        load_article(path, tmp_path)
    assert info.value.file == "sub/broken.md"
    assert needle in str(info.value)
    assert "sub/broken.md" in str(info.value)


def test_yaml_error_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path / "x.md", "---\ntitle: ok\nsource: [oops\n---\nbody")
    with pytest.raises(CorpusError, match=r"line \d+"):
        load_article(path, tmp_path)


# ---------------------------------------------------------------- txt and encodings


def test_txt_title_is_first_nonempty_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "\n\n  金什合作产业园  \n\n第一段。\n第二段。\n")
    art = load_article(path, tmp_path)
    assert art.title == "金什合作产业园"
    assert art.body == "第一段。\n第二段。"
    assert art.date is None and art.source is None


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.md", b"\xef\xbb\xbf---\r\ntitle: T\r\ndate: 2024-01-19\r\n---\r\n\r\n\xe6\xad\xa3\xe6\x96\x87\xe3\x80\x82\r\n")
    art = load_article(path, tmp_path)
    assert (art.title, art.date, art.body) == ("T", "2024-01-19", "正文。")


def test_gb18030_fallback(tmp_path: Path) -> None:
    text = "金牛区与什邡市\n\n金什合作产业园由金牛区、什邡市合作共建。“股比”为6∶4。\n"
    path = write(tmp_path / "gbk.txt", text, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    art = load_article(path, tmp_path)
    assert art.title == "金牛区与什邡市"
    assert art.body == "金什合作产业园由金牛区、什邡市合作共建。“股比”为6∶4。"


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "u16.txt", "标题\n正文。", encoding="utf-16")
    assert load_article(path, tmp_path).body == "正文。"


# ---------------------------------------------------------------- html


HTML = """<!doctype html><html><head>
<meta charset="utf-8"><title>金什合作产业园</title>
<meta property="article:published_time" content="2024-01-19T08:00:00+08:00">
<meta property="og:site_name" content="成都日报">
<link rel="canonical" href="https://www.cdrb.com.cn/a.html">
<style>p { color: red }</style>
<script>var x = "不应出现";</script>
</head><body>
<nav><a href="/">首页</a></nav>
<h1>金什合作产业园</h1>
<h2>政策同享</h2>
<p>金什合作产业园由金牛区、
   什邡市合作共建。</p>
<p>第二段<b>加粗</b>文字。<br>换行后。</p>
<div hidden><p>隐藏文字</p></div>
<ul><li>条目一</li><li>条目二</li></ul>
<script>document.write("也不应出现")</script>
</body></html>"""


def test_html_title_meta_and_visible_blocks(tmp_path: Path) -> None:
    art = load_article(write(tmp_path / "a.html", HTML), tmp_path)
    assert art.title == "金什合作产业园"
    assert art.date == "2024-01-19"
    assert art.source == "成都日报"
    assert art.url == "https://www.cdrb.com.cn/a.html"
    assert "不应出现" not in art.body and "color" not in art.body and "隐藏文字" not in art.body
    blocks = art.body.split("\n\n")
    assert "政策同享" in blocks
    assert "金什合作产业园由金牛区、 什邡市合作共建。" in blocks
    assert "第二段加粗文字。\n换行后。" in blocks
    assert "条目一" in blocks and "条目二" in blocks
    assert blocks[0] != "金什合作产业园"  # the <h1> repeating the title is not body text


def test_html_title_from_h1_when_no_title_tag(tmp_path: Path) -> None:
    path = write(tmp_path / "b.htm", "<html><body><h1>两地协作</h1><p>正文。</p></body></html>")
    art = load_article(path, tmp_path)
    assert art.title == "两地协作"
    assert art.body == "正文。"
    assert art.date is None and art.url is None


# ---------------------------------------------------------------- bad files, folders


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("empty.md", b"", "no article text"),
        ("only-front-matter.md", b"---\ntitle: x\n---\n\n   \n", "no article text"),
        ("only-title.txt", "标题\n\n".encode(), "no article text"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("latin1.txt", b"caf\xe9 au lait\n", "UTF-8"),
    ],
)
def test_bad_files_raise_corpus_error(tmp_path: Path, name: str, data: bytes, needle: str) -> None:
    path = write(tmp_path / name, data)
    with pytest.raises(CorpusError) as info:
        load_article(path, tmp_path)
    assert info.value.file == name
    assert needle in info.value.reason


def test_size_cap(tmp_path: Path) -> None:
    path = write(tmp_path / "huge.txt", "标题\n" + "很长的正文。" * 2000)
    assert load_article(path, tmp_path).title == "标题"
    with pytest.raises(CorpusError, match="limit"):
        load_article(path, tmp_path, max_bytes=1000)


def test_load_corpus_reports_bad_files_and_loads_the_rest(tmp_path: Path) -> None:
    write(tmp_path / "good.md", "---\ntitle: 好\n---\n正文。")
    write(tmp_path / "nested" / "deep" / "good.txt", "标题\n正文。")
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "bin.html", b"\x00\x01\x02")
    write(tmp_path / "broken.md", "---\ntitle: [x\n---\nbody")
    write(tmp_path / "huge.md", "x" * 3000)
    articles, errors = load_corpus(tmp_path, max_bytes=2000)
    assert [a.article_id for a in articles] == ["good.md", "nested/deep/good.txt"]
    assert sorted(e.file for e in errors) == ["bin.html", "broken.md", "empty.txt", "huge.md"]


def test_discover_filters_and_sorts(tmp_path: Path) -> None:
    for rel in ["b.md", "a.txt", "sub/c.HTML", "sub/d.markdown", "sub/e.htm", ".hidden.md",
                ".git/x.md", "sub/.cache/y.md", "glossary.tsv", "glossary.md", "notes.pdf", "data.json"]:
        write(tmp_path / rel, "标题\n正文。")
    found = [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)]
    assert found == ["a.txt", "b.md", "sub/c.HTML", "sub/d.markdown", "sub/e.htm"]
    assert {".md", ".markdown", ".txt", ".html", ".htm"} == set(SUPPORTED_SUFFIXES)


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")


def test_article_id_is_relative_posix_path(tmp_path: Path) -> None:
    path = write(tmp_path / "2024" / "01" / "a.md", "正文。")
    assert load_article(path, tmp_path).article_id == "2024/01/a.md"
    assert load_article(path, tmp_path).title == "a"
