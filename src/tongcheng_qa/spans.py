"""Short answers: the span of an evidence sentence that answers a number, date or ratio question.

"金什合作产业园入驻了几家企业?" is answered by the sentence "目前入驻企业4家,另有3家正在洽谈";
its answer is "4家". The rules are general ones of written Chinese and English numbers:

- a number is digits (with decimals and thousands separators) or Chinese numerals, with an
  optional approximation (多, 余), magnitude (万, 亿) and a unit or measure word after it;
- a date is a year, a month or a day written with 年/月/日, or ISO / English month forms;
- a ratio is ``6∶4`` / ``6:4`` / ``6比4``, a percentage, or 百分之…;
- 一 with a measure word is an article ("一家企业" = "a company") and a doubled measure word
  (一栋栋) means "every": neither is a count;
- a span the question itself contains is not the answer (it is what the question gives);
- a count is not part of a calendar date (1月16日), unless it asks in years, months or days;
- a count asked in a unit (几家, 多少亿元) is answered by a number in that unit where one is there;
- among the rest, the answer is the span nearest to where the sentence matches the
  question's own terms (the fact asked about sits next to the words that ask for it).

Only these three kinds get a short answer: for names and descriptions no span rule is
reliable enough, and the quote alone answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .analysis import AnswerType, QuestionAnalysis, fold

_ZH_DIGITS = "零〇一二三四五六七八九十百千万亿两"
#: Units and measure words that follow a number in news text (general vocabulary, not per question).
UNITS = (
    "平方公里 平方米 公里 公顷 千米 厘米 毫米 米 亩 吨 千克 公斤 克 升 度 "
    "% ％ 亿元 万元 元 美元 欧元 英镑 日元 港元 泰铢 卢比 块 "
    "个 家 条 项 位 名 人 户 所 座 栋 套 辆 台 架 艘 件 只 头 种 类 批 期 届 次 场 轮 倍 岁 年 月 天 日 周 小时 分钟 秒 "
    "percent per cent million billion thousand km kilometres kilometers square metres meters people companies"
).split()
_UNIT = "|".join(sorted((re.escape(u) for u in UNITS), key=len, reverse=True))
_NUMBER = re.compile(
    rf"(?:约|近|超过|逾)?(?:\d+(?:[.,]\d+)*|[{_ZH_DIGITS}]{{1,8}})(?:多|余)?[万亿千百]*\s?(?:{_UNIT})?",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\d{4}\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?)?|\d{1,2}\s*月\s*\d{1,2}\s*[日号]|\d{1,2}\s*月(?:份)?|"
    r"\d{4}-\d{2}-\d{2}|"
    r"\b(?:\d{1,2} )?(?:January|February|March|April|May|June|July|August|September|October|November|December)"
    r"(?: \d{1,2})?(?:,? \d{4})?\b|\b(?:1[5-9]|20)\d{2}\b",
    re.IGNORECASE,
)
_RATIO = re.compile(
    r"\d+(?:\.\d+)?\s*[∶:：比]\s*\d+(?:\.\d+)?(?:\s*[∶:：比]\s*\d+(?:\.\d+)?)*|\d+(?:\.\d+)?\s*(?:[%％]|percent\b)|"
    rf"百分之[{_ZH_DIGITS}点]+",
    re.IGNORECASE,
)
_PATTERNS: dict[AnswerType, re.Pattern[str]] = {"number": _NUMBER, "date": _DATE, "ratio": _RATIO}
#: 一 with a measure word is the indefinite article ("一家来自成都的企业" = "a company"), and a
#: doubled measure word means "every" (一栋栋厂房): neither is a count.
_NOT_A_COUNT = re.compile(rf"^一(?:{_UNIT})$")


def _spans(kind: AnswerType, sentence: str) -> list[tuple[int, int]]:
    pattern = _PATTERNS.get(kind)
    if pattern is None:
        return []
    out = []
    for m in pattern.finditer(sentence):
        text = m.group(0).strip()
        if not text or not any(c.isdigit() or c in _ZH_DIGITS for c in text):
            continue
        if kind == "number" and not re.search(r"\d", text):
            if not re.search(rf"(?:{_UNIT})$", text) or _NOT_A_COUNT.match(text):
                continue  # Chinese numerals without a unit are mostly words (一体化, 十分)
            end = m.start() + len(m.group(0))
            if end < len(sentence) and sentence[end - 1] == sentence[end]:
                continue  # 一栋栋, 一排排: "row after row", no count
        out.append((m.start(), m.start() + len(m.group(0).rstrip())))
    return out


_TIME_UNITS = frozenset(("年", "月", "日", "天", "周"))
_ASKED_UNIT = re.compile(rf"(?:几|多少)({_UNIT})", re.IGNORECASE)


def asked_unit(question: str) -> str | None:
    """The unit or measure word a count question asks in (几家 -> 家, 多少亿元 -> 亿元), if any."""
    m = _ASKED_UNIT.search(fold(question))
    return m.group(1) if m else None


def has_count_in(sentence: str, unit: str) -> bool:
    """Whether the sentence gives a number in ``unit`` (4家, 35亿元), not an article (一家)."""
    return any(fold(sentence[a:b]).endswith(unit) for a, b in _spans("number", sentence))


def _term_positions(analysis: QuestionAnalysis, folded: str) -> list[int]:
    pos: list[int] = []
    for term in analysis.terms:
        for form in term.forms:
            if not form:
                continue
            start = folded.find(form)
            while start >= 0:
                pos.extend((start, start + len(form)))
                start = folded.find(form, start + 1)
    return pos


def _distance(span: tuple[int, int], anchors: Iterable[int]) -> int:
    a, b = span
    return min((0 if a <= x <= b else min(abs(x - a), abs(x - b)) for x in anchors), default=0)


def short_answer(analysis: QuestionAnalysis, question: str, sentence: str) -> str | None:
    """The verbatim span of ``sentence`` answering a number, date or ratio question, or None."""
    kind = analysis.answer_type
    spans = _spans(kind, sentence)
    q = fold(question).replace(" ", "")
    spans = [s for s in spans if fold(sentence[s[0]:s[1]]).replace(" ", "") not in q]
    unit = asked_unit(question) if kind == "number" else None
    if kind == "number" and unit not in _TIME_UNITS:  # a count is no calendar date (1月16日)
        dates = [(m.start(), m.end()) for m in _DATE.finditer(sentence)]
        spans = [s for s in spans if not any(a < s[1] and s[0] < b for a, b in dates)]
    if unit:  # 几家 is answered by a count of 家, not by a date or an amount of money
        spans = [s for s in spans if fold(sentence[s[0]:s[1]]).endswith(unit)] or spans
    if not spans:
        return None
    anchors = _term_positions(analysis, fold(sentence))
    best = min(spans, key=lambda s: (_distance(s, anchors), s[0]))
    return sentence[best[0]:best[1]]


def first_short_answer(analyses: Sequence[QuestionAnalysis], questions: Sequence[str],
                       sentences: Sequence[str]) -> str | None:
    """The short answer of the first question part that has one among the chosen sentences."""
    for analysis, question in zip(analyses, questions, strict=True):
        for sentence in sentences:
            span = short_answer(analysis, question, sentence)
            if span:
                return span
    return None
