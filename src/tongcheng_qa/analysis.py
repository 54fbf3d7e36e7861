"""Question analysis: the weighted terms a supporting sentence must contain, and the answer type.

Used by the extractive engine to pick evidence sentences and by the refusal logic to decide
whether the sources answer the question at all. Everything is corpus-agnostic: term
weights are IDF from the live lexical index, entity translations come from the glossary.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from .glossary import Glossary
from .lexical import STOPWORDS, LexicalTokenizer
from .types import Lang

AnswerType = Literal["ratio", "number", "date", "title", "person", "name", "other"]

_NUMBER_Q = re.compile(
    r"多少|(?<!哪)几[个家条项年月天位名种所次岁]?|多大|多高|多长|多久|比例|股比|占比|份额|"
    r"\bhow (?:many|much|long|far|big|large)\b|\bwhat (?:percentage|proportion|ratio|share|number|amount)\b|"
    r"\bratio\b|\bsplit\b|\bproportion\b",
    re.IGNORECASE,
)
_DATE_Q = re.compile(
    r"何时|什么时候|哪一?年|哪个月|几月|几号|哪天|日期|\bwhen\b|\bwhat (?:year|month|date|day)\b|\bwhich year\b",
    re.IGNORECASE,
)
#: A proportion (股比, 占比, "what ratio"): answered by "6∶4", "60%", "三成", not by any number.
_RATIO_Q = re.compile(
    r"比例|股比|占比|持股比|股权比|\bratio\b|\bproportion\b|\bpercentage\b|\bwhat share\b|"
    r"\b(?:shareholding|ownership|equity|stake|revenue|tax|profit)[- ]split\b",
    re.IGNORECASE,
)
#: A post someone holds (李波担任什么职务? What is Li Bo's position?): answered by a title.
_TITLE_Q = re.compile(
    r"职务|职位|头衔|担任什么|任什么职|什么职|"
    r"\b(?:what|which) (?:position|post|title)\b|\b(?:position|post|title) (?:does|did|do|is|was)\b|"
    r"'s (?:position|post|title)\b",
    re.IGNORECASE,
)
_PERSON_Q = re.compile(r"谁|哪位|\bwho\b|\bwhom\b|\bwhose name\b", re.IGNORECASE)
_NAME_Q = re.compile(
    r"哪几家|哪家|哪些(?:企业|公司|单位|机构)|(?:企业|公司|单位|机构)(?:的)?(?:名称|名字|叫什么)|叫什么|"
    r"\bwhich (?:companies|company|firms?|enterprises?|organi[sz]ations?)\b|\bname of\b|\bnamed?\b|\bcalled\b",
    re.IGNORECASE,
)

_HAS_NUMBER = re.compile(r"\d|[一二三四五六七八九十百千两半]+[个家条项名位种次座栋所年月天日亿万元倍成批期]")
_HAS_RATIO = re.compile(
    r"\d+(?:\.\d+)?\s*[∶:：比]\s*\d+|\d+(?:\.\d+)?\s*[%％]|百分之|\d+(?:\.\d+)? ?percent\b|一半|半数|过半|"
    r"[一二三四五六七八九十\d]成(?![立功为员本果绩就熟型不])",
    re.IGNORECASE,
)
_HAS_TITLE = re.compile(
    r"主任|书记|经理|总裁|主席|负责人|总监|专员|总工程师|首席[\u4e00-\u9fff]{1,3}官|创始人|"
    r"(?:董事|监事|委员)(?!会)|"  # 董事长 / 委员, not 董事会 / 管理委员会
    r"(?:局|区|市|县|镇|院|部|处|科|秘书|厂|所|校|会|理事|董事|行|馆|站|队|社|台)长(?![期远效达江度足久沙春城安三])"  # not 园区长期
)
_HAS_DATE = re.compile(r"\d{4}\s*年|\d{1,2}\s*月|\d{1,2}\s*[日号]|年[前后初底末]|[上下]半年|今年|去年|明年|\b(19|20)\d{2}\b")
_HAS_PERSON = re.compile(
    r"主任|书记|经理|局长|区长|市长|县长|董事长|总裁|院长|部长|处长|科长|主席|说|表示|介绍|告诉|指出|[A-Z][a-z]+ [A-Z][a-z]+"
)
_HAS_NAME = re.compile(
    r"[\u4e00-\u9fffA-Za-z0-9()（）]{2,}?(?:有限责任公司|股份有限公司|有限公司|公司|集团|银行|大学|学院|研究院|研究所|医院|协会|中心|基地)"
    r"|《[^》]+》"
)
_GENERIC_NAME = re.compile(r"^(?:\d+|[一二三四五六七八九十几多]|另有|其他|该|这|那|各|每|一家|多家|本)")
_HAS_PLACE = re.compile(r"[\u4e00-\u9fff]{1,6}[省市区县镇乡村]")
_NUM_TOKEN = re.compile(r"\d+(?:\.\d+)?")
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Term:
    forms: tuple[str, ...]  # any of these (lowercased, width-folded) in a sentence counts
    weight: float  # IDF-like importance
    partial: bool = True  # Chinese terms earn partial credit for their characters
    kind: AnswerType | None = None  # a type word (股比): matched by content of that kind instead
    #: extra credit from the text's other ways of naming it (a city's abbreviation in 成眉)
    alias_credit: Callable[[str], float] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class QuestionAnalysis:
    lang: Lang
    answer_type: AnswerType
    terms: tuple[Term, ...]

    @property
    def total_weight(self) -> float:
        return sum(t.weight for t in self.terms)


def fold(text: str) -> str:
    """Width- and case-folded text for matching (full-width digits/letters -> ASCII)."""
    return unicodedata.normalize("NFKC", text).lower()


def answer_type(question: str) -> AnswerType:
    if _DATE_Q.search(question):
        return "date"
    if _RATIO_Q.search(question):
        return "ratio"
    if _NUMBER_Q.search(question):
        return "number"
    if _TITLE_Q.search(question):
        return "title"
    if _PERSON_Q.search(question):
        return "person"
    if _NAME_Q.search(question):
        return "name"
    return "other"


def type_fits(kind: AnswerType, sentence: str) -> bool:
    if kind == "ratio":
        return bool(_HAS_RATIO.search(sentence))
    if kind == "title":
        return bool(_HAS_TITLE.search(sentence))
    if kind == "number":
        return bool(_HAS_NUMBER.search(sentence))
    if kind == "date":
        return bool(_HAS_DATE.search(sentence))
    if kind == "person":  # "who" may also be answered by an organisation or a place (由金牛区、什邡市…)
        return bool(_HAS_PERSON.search(sentence) or _HAS_NAME.search(sentence) or _HAS_PLACE.search(sentence))
    if kind == "name":
        return any(not _GENERIC_NAME.match(m.group(0)) for m in _HAS_NAME.finditer(sentence))
    return True


#: Words that name the kind of answer rather than its content ("what name", "which
#: aspects"): an article answering the question need not contain them.
META_WORDS = frozenset(
    "名称 名字 全称 方面 情况 内容 方式 措施 原因 目的 意义 作用 特点 时间 地点 数量 数字 "
    "哪些 哪个 哪家 哪几家 哪里 什么 多少 几 几家 几个 几条 怎么 怎样 如何 为何 为什么 是否 分别 具体 "
    "主要 相关 有关 文中 报道 文章 提到 提及 介绍 时候 哪一年 哪年 何时 目前 现在 当前 "
    "担任 任职 official officials person".split()
)
#: Words that name the kind of answer and are matched in part by it: 股比 by "6∶4", 职务 by
#: "副主任". They stay question terms (a sentence without any ratio does not answer
#: 税收分成比例是多少), weighted like the Chinese word, but no sentence needs to repeat them.
#: An English one counts only where it sets the question's type ("the title of the plan" is no post).
TYPE_WORDS: dict[str, AnswerType] = {
    **dict.fromkeys(("股比", "比例", "占比", "持股比例", "股权比例", "ratio", "proportion", "percentage"), "ratio"),
    **dict.fromkeys(("职务", "职位", "头衔", "position", "title"), "title"),
}
_TYPE_WORD_ZH: dict[AnswerType, str] = {"ratio": "比例", "title": "职务"}
#: Credit for a type word whose kind of content (not the word) is in the sentence.
TYPE_WORD_CREDIT = 0.5
#: Weight of an English content word that has no translation and no match in the corpus.
UNTRANSLATED_WEIGHT = 0.2
_CONTENT_POS = ("n", "vn", "nz", "nr", "ns", "nt", "nrt", "nrfg", "eng", "q", "j", "i")
_HALF_POS = ("v", "a", "an", "ad", "vd")


class TermStats:
    """Document frequencies of arbitrary substrings over one snapshot's chunks (cached)."""

    def __init__(self, texts: list[str]) -> None:
        self.n_docs = len(texts)
        self._docs = [fold(t) for t in texts]
        self._cache: dict[str, int] = {}
        self._pairs: dict[str, int] | None = None

    def _pair_df(self) -> dict[str, int]:
        """Document frequency of every two-character string, counted once: the evidence
        selector asks for many question bigrams, and scanning every chunk for each new one
        costs milliseconds on a corpus of thousands of chunks."""
        if self._pairs is None:
            counts: dict[str, int] = {}
            for d in self._docs:
                for pair in {d[i : i + 2] for i in range(len(d) - 1)}:
                    counts[pair] = counts.get(pair, 0) + 1
            self._pairs = counts
        return self._pairs

    def df(self, term: str) -> int:
        term = fold(term)
        if len(term) == 2:
            return self._pair_df().get(term, 0)
        hit = self._cache.get(term)
        if hit is None:
            hit = self._cache[term] = sum(1 for d in self._docs if term in d)
        return hit

    def idf(self, term: str) -> float:
        """IDF, where a term the corpus lacks counts like one in a single document: absent
        words matter (an unanswerable question asks about something the text lacks) but a
        paraphrase must not outweigh everything the sentence does match."""
        n = max(self.df(term), 1)
        return math.log(1.0 + (self.n_docs - n + 0.5) / (n + 0.5))


#: One-character abbreviations of the region's cities. News joins them into compounds that
#: name several cities at once: 成德 (Chengdu-Deyang), 成眉, 成资, 德眉资, 成德眉资, 成渝.
CITY_ABBREVIATIONS = {"成都": "成", "德阳": "德", "眉山": "眉", "资阳": "资", "重庆": "渝"}
_ABBREV_RUN = re.compile(f"[{''.join(CITY_ABBREVIATIONS.values())}]{{2,}}")


class QuestionAnalyzer:
    def __init__(self, tokenizer: LexicalTokenizer, glossary: Glossary) -> None:
        import jieba.posseg

        self.tokenizer = tokenizer
        self.glossary = glossary
        self._pos = jieba.posseg.POSTokenizer(tokenizer.jieba)
        tokenizer.jieba.check_initialized()  # type: ignore[attr-defined]
        self._compounds = CityCompounds(tokenizer.jieba.FREQ)  # type: ignore[attr-defined]

    def _alias_credit(self, zh: str) -> Callable[[str], float] | None:
        char = CITY_ABBREVIATIONS.get(zh)
        return partial(self._compounds.credit, char) if char else None

    @staticmethod
    def _type_term(forms: tuple[str, ...], stats: TermStats) -> Term:
        kind = TYPE_WORDS[forms[0]]
        weight = stats.idf(forms[0] if _CJK.search(forms[0]) else _TYPE_WORD_ZH[kind])
        return Term(forms, weight, partial=False, kind=kind)

    def analyze(self, question: str, lang: Lang, stats: TermStats) -> QuestionAnalysis:
        kind = answer_type(question)
        terms: dict[str, Term] = {}
        spans: list[tuple[int, int]] = []
        # 1. Glossary entities: one term with all their Chinese forms (and the English one).
        matches = self.glossary.match_english(question) if lang == "en" else []
        matches += self.glossary.match_chinese(question)
        for m in matches:
            forms = tuple(dict.fromkeys(fold(f) for f in (*m.entry.zh_forms, m.entry.en)))
            spans.append((m.start, m.end))
            if forms[0] in TYPE_WORDS:  # e.g. 股比 "shareholding ratio"
                if _CJK.search(m.surface) or TYPE_WORDS[forms[0]] == kind:
                    terms.setdefault(forms[0], self._type_term(forms, stats))
                continue
            if forms[0] in META_WORDS:
                continue
            weight = min(stats.idf(f) for f in m.entry.zh_forms)
            terms.setdefault(forms[0], Term(forms, weight, partial=True, alias_credit=self._alias_credit(m.entry.zh)))
        rest = _blank_spans(question, spans)
        # 2. Remaining words, weighted by part of speech. For English questions only words
        #    the corpus contains count (an English word absent from Chinese news says
        #    nothing about whether the news answers the question).
        for pair in self._pos.cut(rest):
            word, flag = fold(pair.word.strip()), pair.flag
            if not word or word in terms or word in META_WORDS or word in STOPWORDS:
                continue
            if word in TYPE_WORDS and (_CJK.search(word) or TYPE_WORDS[word] == kind):
                terms[word] = self._type_term((word,), stats)
                continue
            is_num = bool(_NUM_TOKEN.fullmatch(word))
            if is_num:
                factor = 1.5
            elif flag.startswith(_CONTENT_POS) or (flag == "m" and _NUM_TOKEN.search(word)):
                factor = 1.0
            elif flag.startswith(_HALF_POS):
                factor = 0.5
            else:
                continue
            if lang == "en" and not is_num and (_CJK.search(word) is None) and stats.df(word) == 0:
                # An English word neither the glossary nor the corpus knows: the question asks
                # about something we cannot check; it lowers confidence without being matchable.
                if len(word) >= 3 and factor >= 1.0:
                    terms[word] = Term((word,), UNTRANSLATED_WEIGHT, partial=False)
                continue
            if _CJK.search(word) is None and not is_num and len(word) < 2:
                continue
            terms[word] = Term((word,), factor * stats.idf(word), partial=bool(_CJK.search(word)) and len(word) >= 2)
        return QuestionAnalysis(lang, kind, tuple(terms.values()))


class CityCompounds:
    """Finds compounds of city abbreviations (成德, 成眉, 德眉资, 成渝…) that name a city.

    A compound must start a word: in 完成资金 the 成 belongs to 完成. The test uses the
    word list of the tokenizer's dictionary: the character before the compound may not
    form a word with its first character, unless it already ends a word of its own
    (打造成德…: 造成 is a word, but so is 打造, so 成德 starts one). A compound whose start
    fails the test is tried again from its next character (形成德眉资 -> 德眉资).
    """

    def __init__(self, words: Mapping[str, int]) -> None:
        self._words = words

    def _is_word(self, text: str) -> bool:
        return bool(self._words.get(text))

    def _starts_word(self, text: str, i: int) -> bool:
        if i == 0 or not self._is_word(text[i - 1 : i + 1]):
            return True
        return i >= 2 and self._is_word(text[i - 2 : i])

    def credit(self, city_char: str, text: str) -> float:
        """2 / (cities named) for the best compound naming the city: 成眉 names Chengdu and
        Meishan fully, 成德眉资 each of the four cities in part; 0 when there is none."""
        best = 0.0
        for m in _ABBREV_RUN.finditer(text):
            i, run = m.start(), m.group(0)
            if not self._starts_word(text, i):
                i, run = i + 1, run[1:]
            if len(run) >= 2 and city_char in run:
                best = max(best, min(1.0, 2 / len(run)))
        return best


def _blank_spans(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        for i in range(a, min(b, len(chars))):
            chars[i] = " "
    return "".join(chars)


def term_credit(term: Term, folded_sentence: str) -> float:
    """1 if one of the term's forms occurs (a type word: content of its kind); partial
    credit for a Chinese term's characters or a compound naming several cities."""
    if any(f and f in folded_sentence for f in term.forms):
        return 1.0
    if term.kind:  # a ratio shows that the sentence gives one, not that it is the one asked for
        return TYPE_WORD_CREDIT if type_fits(term.kind, folded_sentence) else 0.0
    alias = term.alias_credit(folded_sentence) if term.alias_credit else 0.0
    if alias >= 1.0:
        return alias
    if term.partial:
        # Half credit when most of a Chinese term's character bigrams occur (入驻企业 ~ 企业入驻).
        form = next((f for f in term.forms if _CJK.search(f)), term.forms[0])
        grams = [form[i : i + 2] for i in range(len(form) - 1) if _CJK.match(form[i]) and _CJK.match(form[i + 1])]
        if grams:
            share = sum(g in folded_sentence for g in grams) / len(grams)
            return max(alias, 0.5 * share if share >= 0.5 else 0.0)
    return alias


#: Credit for a question term found not in the sentence itself but in its passage (the
#: article title, section heading or a neighbouring sentence): it sets the topic.
CONTEXT_CREDIT = 0.6


def coverage(analysis: QuestionAnalysis, sentence: str, context: str = "") -> tuple[float, set[int]]:
    """IDF-weighted share of the question's terms found in ``sentence`` (or, at reduced
    credit, in its ``context``) and which terms the sentence itself matched."""
    return folded_coverage(analysis, fold(sentence), fold(context) if context else "")


def folded_coverage(analysis: QuestionAnalysis, folded: str, folded_ctx: str = "") -> tuple[float, set[int]]:
    """:func:`coverage` of texts already passed through :func:`fold` (callers scoring many
    sentences of one passage fold the passage once)."""
    total = analysis.total_weight
    if total <= 0:
        return 0.0, set()
    got = 0.0
    hit: set[int] = set()
    for i, t in enumerate(analysis.terms):
        c = term_credit(t, folded)
        if c >= 1.0:
            hit.add(i)
        elif folded_ctx:
            c = max(c, CONTEXT_CREDIT * term_credit(t, folded_ctx))
        got += c * t.weight
    return got / total, hit


_SPLIT_ZH = re.compile(r"(?<=[?？;；])\s*(?=\S)")
_SPLIT_EN = re.compile(
    r"(?<=\?)\s+(?=\S)|,?\s+and\s+(?=(?:how|what|which|who|whom|when|where|why|in what|is|are|was|were|did|does|do)\b)",
    re.IGNORECASE,
)


def split_question(question: str) -> list[str]:
    """Sub-questions of a compound question ("…是什么时候签订的?两地明确了多少个合作领域?",
    "In what year did …, and how many …?"); a simple question is returned as it is."""
    parts = [p.strip() for p in _SPLIT_ZH.split(question)]
    out: list[str] = []
    for part in parts:
        out.extend(p.strip(" ,") for p in _SPLIT_EN.split(part))
    out = [p for p in out if len(p) >= 4]
    return out if len(out) > 1 else [question]
