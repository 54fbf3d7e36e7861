"""Verified citations for any answer engine.

An engine writes answer text with ``[n]`` markers, ``n`` being the 1-based position of a
passage in the list it was given. Engines (LLMs above all) cite the wrong passage, invent
numbers and write markers in many styles, so nothing they say about sources is trusted:

1. The answer is split into claim sentences; each marker belongs to the claim it sits in
   (or ends: a marker right after a sentence ender belongs to the sentence before it).
2. Each cited passage is checked against the claim (:func:`support_score`). A passage
   that does not support the claim is replaced by the best one that does (re-attributed);
   with none, the marker is dropped and the claim stays, unsupported, without a marker.
   Markers outside ``1..len(passages)`` are treated like wrong citations; malformed ones
   (``[abc]``) are dropped. A claim without markers that a passage supports strongly gets one.
3. Each citation quotes the passage sentence that best supports its claim, with offsets
   into the article body (``quote == body[start:end]``, checked before returning).
4. Markers are rewritten as ``[1]``, ``[2]``, ... in order of first appearance, one per
   distinct (chunk, quote) pair.

Support is lexical and deterministic. A claim's checkable items are its numbers (values,
so 100亿 = 10 billion, 6∶4 = 6:4, 1,500 = 1500), the glossary entities it names (English
names are looked up by their Chinese forms, so an English claim can be checked against a
Chinese passage), and its key terms (jieba content words of 2+ characters for Chinese,
content words for English when the passage is English). The score is the weighted share
of items the passage contains, capped below the support threshold when a number is
missing or most named entities are.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .analysis import fold
from .chunking import split_sentences
from .glossary import Glossary, GlossaryEntry
from .injection import is_instruction, without_instructions
from .lexical import STOPWORDS, LexicalTokenizer
from .types import Citation, Lang, Passage

__all__ = ["MARKER_RE", "SUPPORT_THRESHOLD", "VerifiedAnswer", "quote_is_valid", "support_score", "verify_answer"]

#: A well-formed marker: [1], [1, 2], [1，2], 【1】, ［1］ (full-width digits allowed).
MARKER_RE = re.compile(r"[\[【［]\s*(\d{1,3}(?:\s*[,，、;；]\s*\d{1,3})*)\s*[\]】］]")
#: Anything that looks like a citation marker but is not well formed: [abc], [1-2], [source 3].
#: Brackets holding Chinese text (【成长故事】) and Markdown links ([text](url)) are left alone.
_MARKERISH_RE = re.compile(r"[\[【［]\s*[A-Za-z0-9#^][A-Za-z0-9 #^.,:;\-–]{0,15}\s*[\]】］](?!\()")

#: A passage supports a claim when its score reaches this.
SUPPORT_THRESHOLD = 0.5
#: A claim without markers gets one only when a passage supports it at least this well.
STRONG_SUPPORT = 0.8
#: ... and only when the claim has this many numbers / key terms the passage could be checked for.
MIN_CONTENT_TO_ADD = 2
#: Score ceiling when a number of the claim, or most of its named entities, are missing.
MISSING_CAP = 0.3

W_NUMBER = 3.0
W_NAME = 2.0  # a named entity (place, company, person, event, ...)
W_TERM = 1.0  # a key term, or a generic glossary term (industry, position, ...)
#: Glossary kinds that are vocabulary rather than names.
GENERIC_KINDS = frozenset({"term", "industry", "position"})

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD_CHAR = re.compile(r"[0-9A-Za-z\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z][a-z'’\-]*[a-z]|[a-z]")
#: Chinese words that frame a claim rather than state it ("据…报道", "资料显示").
_FRAME_ZH = frozenset("报道 据悉 据了解 资料 来源 显示 根据 原文 文中 提到 指出 表示 介绍 答案 问题".split())
_CLOSING_PUNCT = frozenset(".,;:!?)]}”’。，；：！？）")
_NUMERAL_TOKEN = re.compile(
    r"^[\d.,零〇一二三四五六七八九十百千万亿两第]+[个家条项名位次种所座栋年月日号天周岁人倍成元]?$")


# ---------------------------------------------------------------------------- numbers

_NUMBER = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\d])")
_SCALE_AFTER = re.compile(
    r"\s*(?:余|多)?\s*(万亿|千亿|百亿|亿|千万|百万|万|(?:thousand|million|billion|trillion|bn)(?![a-z]))")
_SCALES = {
    "万亿": 10**12, "千亿": 10**11, "百亿": 10**10, "亿": 10**8, "千万": 10**7, "百万": 10**6, "万": 10**4,
    "thousand": 10**3, "million": 10**6, "billion": 10**9, "bn": 10**9, "trillion": 10**12,
}
_EN_NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}
_EN_NUMBER_WORD = re.compile(
    r"\b(" + "|".join(_EN_NUMBER_WORDS) + r")\b(?:[\s\-]+(thousand|million|billion|trillion))?")
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), 1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
#: A month name next to a number ("January 2022", "16 Jan.") counts as that month's number.
_MONTH = re.compile(r"\b(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b")
_DIGIT_AFTER = re.compile(r"\.?,?\s{0,2}\d")
_DIGIT_BEFORE = re.compile(r"\d\s{0,2}$")
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
#: Chinese numerals before a measure word ("四家", "十一个"); 一 and 两 alone are too often not numbers.
_ZH_NUMBER = re.compile(r"(?<![零〇一二三四五六七八九十百千两第])([零〇一二三四五六七八九十百千两]{1,6})"
                        r"(?=[个家条项名位次种所座栋年月天周岁倍])")


def _decimal(text: str) -> Decimal:
    return Decimal(text).normalize()


def _zh_numeral(s: str) -> int | None:
    total, digit = 0, None
    for ch in s:
        if ch in _ZH_DIGITS:
            digit = _ZH_DIGITS[ch] if digit is None else digit * 10 + _ZH_DIGITS[ch]
        elif ch in _ZH_UNITS:
            total += (1 if digit is None else digit) * _ZH_UNITS[ch]
            digit = None
        else:
            return None
    return total + (digit or 0)


def extract_numbers(text: str) -> list[Decimal]:
    """Numeric values written in ``text`` (folded), scaled by 万/亿/million/billion when written so."""
    t = fold(text)
    out: list[Decimal] = []
    for m in _NUMBER.finditer(t):
        try:
            value = _decimal(m.group(1).replace(",", "") + (f".{m.group(2)}" if m.group(2) else ""))
        except InvalidOperation:
            continue
        scale = _SCALE_AFTER.match(t, m.end())
        out.append((value * _SCALES[scale.group(1)]).normalize() if scale else value)
    for m in _EN_NUMBER_WORD.finditer(t):
        value = Decimal(_EN_NUMBER_WORDS[m.group(1)])
        out.append((value * _SCALES[m.group(2)]).normalize() if m.group(2) else value)
    for m in _MONTH.finditer(t):
        if _DIGIT_AFTER.match(t, m.end()) or _DIGIT_BEFORE.search(t, 0, m.start()):
            out.append(Decimal(_MONTHS[m.group(1)]))
    for m in _ZH_NUMBER.finditer(t):
        zh_value = _zh_numeral(m.group(1))
        if zh_value is not None and m.group(1) not in ("一", "两"):
            out.append(Decimal(zh_value))
    return out


_RATIO = re.compile(r"(?<![\d.])(\d{1,3})\s*[∶:比]\s*(\d{1,3})(?![\d.])")


def _text_numbers(text: str) -> frozenset[Decimal]:
    """Every value a text can be said to contain: scaled ones, the digits as written, and the
    shares a ratio implies (6∶4 -> 60 and 40 per cent)."""
    t = fold(text)
    values = set(extract_numbers(text))
    for m in _NUMBER.finditer(t):
        try:
            values.add(_decimal(m.group(1).replace(",", "") + (f".{m.group(2)}" if m.group(2) else "")))
        except InvalidOperation:
            continue
    for m in _RATIO.finditer(t):
        a, b = int(m.group(1)), int(m.group(2))
        if a + b and 100 * a % (a + b) == 0:
            values.update((Decimal(100 * a // (a + b)), Decimal(100 * b // (a + b))))
    return frozenset(values)


# ---------------------------------------------------------------------------- items

@dataclass(frozen=True)
class _Entity:
    forms: tuple[str, ...]  # folded Chinese forms, then English forms
    named: bool


@dataclass(frozen=True)
class _Items:
    """What a claim asserts that a source can be checked for."""

    numbers: tuple[Decimal, ...]
    entities: tuple[_Entity, ...]
    zh_terms: tuple[str, ...]
    en_words: tuple[str, ...]

    def n_content(self, view: _View) -> int:
        """Numbers and key terms (not bare names) that ``view`` can be checked for."""
        return (len(self.numbers) + (len(self.zh_terms) if view.has_cjk else 0)
                + (len(self.en_words) if view.is_en else 0))

    def checkable(self, view: _View) -> bool:
        """Is anything in the claim checkable against ``view``?"""
        return bool(self.numbers or self.entities or self.n_content(view))


@dataclass(frozen=True)
class _View:
    """A text to check claims against."""

    folded: str
    numbers: frozenset[Decimal]
    has_cjk: bool
    is_en: bool
    words: frozenset[str]


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _view(text: str) -> _View:
    folded = fold(text)
    words = _LATIN_WORD.findall(folded)
    n_cjk = len(_CJK.findall(folded))
    return _View(
        folded=folded,
        numbers=_text_numbers(text),
        has_cjk=n_cjk > 0,
        is_en=1.5 * len(words) > n_cjk,
        words=frozenset(_singular(w) for w in words),
    )


_TOKENIZERS: weakref.WeakKeyDictionary[Glossary, LexicalTokenizer] = weakref.WeakKeyDictionary()


def _tokenizer(glossary: Glossary) -> LexicalTokenizer:
    tok = _TOKENIZERS.get(glossary)
    if tok is None:
        tok = _TOKENIZERS[glossary] = LexicalTokenizer(glossary.zh_terms())
    return tok


def _blank(text: str, spans: Sequence[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _entity(entry: GlossaryEntry) -> _Entity:
    forms = tuple(dict.fromkeys(fold(f) for f in (*entry.zh_forms, *entry.en_forms) if f.strip()))
    return _Entity(forms, entry.kind not in GENERIC_KINDS)


def _items(claim: str, glossary: Glossary) -> _Items:
    text = MARKER_RE.sub(" ", claim)
    entities: dict[str, _Entity] = {}
    spans: list[tuple[int, int]] = []
    for m in (*glossary.match_chinese(text), *glossary.match_english(text)):
        if not any(a < m.end and m.start < b for a, b in spans):
            entities.setdefault(m.entry.zh, _entity(m.entry))
            spans.append((m.start, m.end))
    rest = _blank(text, spans)
    zh_terms: list[str] = []
    if _CJK.search(rest):
        for tok in _tokenizer(glossary).jieba.cut(rest):  # type: ignore[attr-defined]
            tok = fold(tok.strip())
            if (len(tok) >= 2 and _CJK.search(tok) and tok not in STOPWORDS and tok not in _FRAME_ZH
                    and not _NUMERAL_TOKEN.match(tok) and tok not in zh_terms):
                zh_terms.append(tok)
    en_words: list[str] = []
    for w in _LATIN_WORD.findall(fold(rest)):
        w = _singular(w.replace("’", "'").removesuffix("'s"))
        if len(w) >= 3 and w not in STOPWORDS and w not in _EN_NUMBER_WORDS and w not in _MONTHS \
                and w not in _SCALES and w not in en_words:
            en_words.append(w)
    return _Items(tuple(extract_numbers(text)), tuple(entities.values()), tuple(zh_terms), tuple(en_words))


def _score(items: _Items, view: _View) -> tuple[float, float]:
    """(capped score, raw weighted share) of ``items`` found in ``view``; (0, 0) without items."""
    total = got = 0.0
    number_missing = False
    for value in items.numbers:
        total += W_NUMBER
        if value in view.numbers:
            got += W_NUMBER
        else:
            number_missing = True
    named = named_found = 0
    for e in items.entities:
        w = W_NAME if e.named else W_TERM
        total += w
        found = any(f in view.folded for f in e.forms)
        got += w if found else 0.0
        if e.named:
            named += 1
            named_found += found
    if view.has_cjk:
        for t in items.zh_terms:
            total += W_TERM
            got += W_TERM if t in view.folded else 0.0
    if view.is_en:
        for word in items.en_words:
            total += W_TERM
            got += W_TERM if word in view.words else 0.0
    if total == 0:
        return 0.0, 0.0
    raw = got / total
    capped = min(raw, MISSING_CAP) if number_missing or 2 * named_found < named else raw
    return capped, raw


def support_score(claim: str, text: str, lang: Lang, glossary: Glossary) -> float:
    """How well ``text`` supports ``claim``, 0..1 (>= ``SUPPORT_THRESHOLD``: supported).

    0 when the claim has nothing checkable. ``lang`` is the question's language; the
    check itself looks at what each part of the claim is written in.
    """
    del lang  # mixed-language claims are handled part by part
    return _score(_items(claim, glossary), _view(text))[0]


# ---------------------------------------------------------------------------- answers

@dataclass(frozen=True)
class VerifiedAnswer:
    text: str  # the answer with markers renumbered [1]..[k]; unsupported ones removed
    citations: tuple[Citation, ...]  # citations[i].n == i + 1
    n_claims: int  # claim sentences (with any content)
    n_supported: int  # claims that end up with at least one verified marker
    dropped_markers: int  # invented, malformed or unsupported markers removed
    reattributed: int  # markers moved to the passage that does support the claim


@dataclass
class _Marker:
    start: int
    end: int
    numbers: tuple[int, ...] | None  # None: malformed
    claim: int = -1
    rendered: str = ""


@dataclass(frozen=True)
class _Quote:
    start: int  # offsets in the chunk text
    end: int


def _find_markers(text: str) -> list[_Marker]:
    markers = [_Marker(m.start(), m.end(), tuple(int(x) for x in re.split(r"\D+", m.group(1)) if x))
               for m in MARKER_RE.finditer(text)]
    taken = [(m.start, m.end) for m in markers]
    for m in _MARKERISH_RE.finditer(text):
        if not any(a < m.end() and m.start() < b for a, b in taken):
            markers.append(_Marker(m.start(), m.end(), None))
    markers.sort(key=lambda m: m.start)
    return markers


def _assign_claims(text: str, spans: list[tuple[int, int]], markers: list[_Marker]) -> None:
    """A marker belongs to the sentence it sits in, or to the one before if it opens its sentence."""
    for mk in markers:
        idx = next((i for i, (a, b) in enumerate(spans) if a <= mk.start < b), len(spans) - 1)
        a = spans[idx][0]
        head = text[a:mk.start]
        for other in markers:
            if a <= other.start and other.end <= mk.start:
                head = head.replace(text[other.start:other.end], " ", 1)
        if idx > 0 and not head.strip():
            idx -= 1
        mk.claim = idx


class _Verifier:
    def __init__(self, passages: Sequence[Passage], glossary: Glossary) -> None:
        self.passages = list(passages)
        self.glossary = glossary
        self._views: dict[int, _View] = {}
        self._sentences: dict[int, list[tuple[int, int, _View]]] = {}

    def passage_view(self, i: int) -> _View:
        if i not in self._views:
            p = self.passages[i]
            meta = " ".join(x for x in (p.chunk.context, p.meta.title, p.meta.source, p.meta.date) if x)
            self._views[i] = _view(f"{without_instructions(p.chunk.text)}\n{meta}")
        return self._views[i]

    def scores(self, items: _Items) -> list[float]:
        return [_score(items, self.passage_view(i))[0] for i in range(len(self.passages))]

    def checkable(self, items: _Items) -> bool:
        return any(items.checkable(self.passage_view(i)) for i in range(len(self.passages)))

    def quote(self, items: _Items, i: int) -> _Quote:
        """The sentence of passage ``i`` that best supports the claim (whole chunk if none scores)."""
        text = self.passages[i].chunk.text
        if i not in self._sentences:
            self._sentences[i] = [
                (a, b, _view(text[a:b])) for a, b in split_sentences(text) if not is_instruction(text[a:b])
            ]
        best: tuple[float, float, int] | None = None
        span = (0, len(text))
        for k, (a, b, view) in enumerate(self._sentences[i]):
            capped, raw = _score(items, view)
            if raw > 0 and (best is None or (capped, raw, -k) > best):
                best, span = (capped, raw, -k), (a, b)
        a, b = span
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        return _Quote(a, b)

    def citation(self, n: int, i: int, q: _Quote) -> Citation:
        p = self.passages[i]
        chunk = p.chunk
        if len(chunk.text) != chunk.end - chunk.start:
            raise AssertionError(f"chunk {chunk.chunk_id}: text length {len(chunk.text)} does not match "
                                 f"its offsets {chunk.start}..{chunk.end}; re-ingest the corpus")
        quote = chunk.text[q.start:q.end]
        c = Citation(n=n, article_id=p.article_id, title=p.meta.title, date=p.meta.date, source=p.meta.source,
                     url=p.meta.url, chunk_id=chunk.chunk_id, quote=quote,
                     start=chunk.start + q.start, end=chunk.start + q.end)
        if not quote or c.end - c.start != len(quote) or chunk.text[c.start - chunk.start:c.end - chunk.start] != quote:
            raise AssertionError(f"citation self-check failed for {chunk.chunk_id} at {c.start}..{c.end}")
        return c


def _best_supporting(scores: list[float], threshold: float) -> int | None:
    best = max(range(len(scores)), key=lambda i: (scores[i], -i), default=None)
    return best if best is not None and scores[best] >= threshold else None


@dataclass
class _Tally:
    n_claims: int = 0
    n_supported: int = 0
    dropped: int = 0
    reattributed: int = 0


def _claim_text(text: str, a: int, b: int, markers: list[_Marker]) -> str:
    inside = sorted((m for m in markers if a <= m.start and m.end <= b), key=lambda m: m.start)
    parts, pos = [], a
    for m in inside:
        parts.append(text[pos:m.start] + " ")
        pos = m.end
    parts.append(text[pos:b])
    return "".join(parts)


class _AnswerBuilder:
    """Decides each marker's fate claim by claim and numbers the citations as they appear."""

    def __init__(self, passages: Sequence[Passage], glossary: Glossary) -> None:
        self.v = _Verifier(passages, glossary)
        self.glossary = glossary
        self.n_passages = len(passages)
        self.numbers: dict[tuple[str, int, int], int] = {}
        self.citations: list[Citation] = []
        self.tally = _Tally()

    def cite(self, i: int, items: _Items) -> int:
        q = self.v.quote(items, i)
        key = (self.v.passages[i].chunk_id, q.start, q.end)
        if key not in self.numbers:
            self.numbers[key] = len(self.citations) + 1
            self.citations.append(self.v.citation(self.numbers[key], i, q))
        return self.numbers[key]

    def target(self, k: int | None, items: _Items, checkable: bool, scores: list[float]) -> int | None:
        """The passage index marker ``k`` ends up citing (None: drop). ``k`` None: malformed."""
        in_range = k is not None and 1 <= k <= self.n_passages
        if not checkable:  # nothing to check (e.g. an English claim without names or numbers):
            return k - 1 if k is not None and in_range else None  # trust an in-range marker
        if k is None:
            return None
        if in_range and scores[k - 1] >= SUPPORT_THRESHOLD:
            return k - 1
        return _best_supporting(scores, SUPPORT_THRESHOLD)

    def claim(self, claim: str, own: list[_Marker]) -> int | None:
        """Rewrite the claim's markers; returns the citation number to append when it had none."""
        items = _items(claim, self.glossary)
        checkable = self.v.checkable(items)
        scores = self.v.scores(items) if checkable else []
        cited: list[int] = []  # passage indexes, in marker order
        for m in own:
            new: list[int] = []
            for k in m.numbers if m.numbers is not None else (None,):
                target = self.target(k, items, checkable, scores)
                if target is None or target in cited:
                    # a repeated marker ([1][1]) is merged, not counted as dropped
                    self.tally.dropped += target is None or k is None or target != k - 1
                    continue
                self.tally.reattributed += k is None or target != k - 1
                cited.append(target)
                new.append(self.cite(target, items))
            m.rendered = "".join(f"[{n}]" for n in new)
        added = None
        if not own and checkable and not claim.rstrip().endswith((":", "：")):
            best = _best_supporting(scores, STRONG_SUPPORT)
            if best is not None and items.n_content(self.v.passage_view(best)) >= MIN_CONTENT_TO_ADD:
                cited.append(best)
                added = self.cite(best, items)
        self.tally.n_claims += 1
        self.tally.n_supported += bool(cited)
        return added


def verify_answer(text: str, passages: Sequence[Passage], lang: Lang, glossary: Glossary) -> VerifiedAnswer:
    """Check every marker of ``text`` against ``passages`` (numbered from 1); see the module doc."""
    spans = split_sentences(text) or [(0, len(text))]
    markers = _find_markers(text)
    _assign_claims(text, spans, markers)
    builder = _AnswerBuilder(passages, glossary)
    inserts: dict[int, str] = {}  # position in text -> a marker added there
    for ci, (a, b) in enumerate(spans):
        own = [m for m in markers if m.claim == ci]
        claim = _claim_text(text, a, b, markers)
        if not _WORD_CHAR.search(claim):  # markers with no claim to support
            builder.tally.dropped += sum(len(m.numbers or (0,)) for m in own)
            continue
        added = builder.claim(claim, own)
        if added is not None:
            space = " " if lang == "en" or text[b - 1].isascii() else ""
            inserts[b] = f"{space}[{added}]"
    out = _render(text, markers, inserts)
    _self_check(out, builder.citations)
    t = builder.tally
    return VerifiedAnswer(out, tuple(builder.citations), t.n_claims, t.n_supported, t.dropped, t.reattributed)


def _render(text: str, markers: list[_Marker], inserts: dict[int, str]) -> str:
    """Apply the marker rewrites and insertions; a removed marker takes the space before it along."""
    edits: list[tuple[int, int, str]] = [(p, p, s) for p, s in inserts.items()]
    for m in markers:
        start = m.start
        if not m.rendered:
            nxt = text[m.end:m.end + 1]
            if not nxt or nxt.isspace() or nxt in _CLOSING_PUNCT:
                while start > 0 and text[start - 1] == " ":
                    start -= 1
        edits.append((start, m.end, m.rendered))
    out: list[str] = []
    pos = 0
    for a, b, s in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(text[pos:a])
        out.append(s)
        pos = max(pos, b)
    out.append(text[pos:])
    return "".join(out).strip()


def _self_check(text: str, citations: list[Citation]) -> None:
    used = {int(n) for m in MARKER_RE.finditer(text) for n in re.split(r"\D+", m.group(1)) if n}
    if used != {c.n for c in citations} or [c.n for c in citations] != list(range(1, len(citations) + 1)):
        raise AssertionError(f"markers {sorted(used)} do not match citations 1..{len(citations)}")


def quote_is_valid(citation: Citation, body: str) -> bool:
    """Does the citation's quote equal the article body at its offsets?"""
    return 0 <= citation.start < citation.end <= len(body) and body[citation.start:citation.end] == citation.quote
