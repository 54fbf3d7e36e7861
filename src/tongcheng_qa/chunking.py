"""Article -> Chunks: sentence-aware, with character offsets into ``Article.body``.

Invariant: ``chunk.text == article.body[chunk.start:chunk.end]`` and the text carries
no surrounding whitespace. Chunks never cut inside a sentence unless that sentence alone
is longer than ``max_chars``; they never span two sections; section headings (short
lines without sentence-ending punctuation, Markdown ``#`` lines) are attached to the
text that follows them and recorded in ``Chunk.context``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .types import Article, Chunk

# ---------------------------------------------------------------------------- sentences

_ZH_ENDERS = frozenset("。！？；…．｡")
_ASCII_ENDERS = frozenset("!?;")
_ALL_ENDERS = _ZH_ENDERS | _ASCII_ENDERS | {"."}
#: Closing quotes/brackets that stay with the sentence they close.
_CLOSERS = frozenset("”’」』）)】》〉］]\"'")
#: Abbreviations after which "." practically never ends a sentence.
_NEVER_FINAL = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "mt", "no", "nos", "vs", "e.g", "i.e", "fig",
    "gen", "sen", "rep", "gov", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "approx", "dept", "est", "jr", "sr", "rev", "vol", "pp",
})
#: Abbreviations that may or may not end a sentence: split only before an uppercase word
#: that does not continue a company name.
_MAYBE_FINAL = frozenset({"co", "inc", "ltd", "corp", "llc", "plc", "etc", "bros"})
_NAME_CONTINUATIONS = frozenset({"ltd", "limited", "inc", "co", "corp", "corporation", "group", "llc", "plc"})
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_WORD_AFTER = re.compile(r"[A-Za-z]+")


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF


def _period_ends(line: str, i: int, j: int) -> bool:
    """Does the ASCII '.' run line[i:j'] (closers up to j) end a sentence?"""
    if j < len(line) and not line[j].isspace():
        # "2.7亿", "U.S", "example.com": not an end, unless Chinese text uses "." as a full stop.
        return _is_cjk(line[j]) and i > 0 and _is_cjk(line[i - 1])
    k = j
    while k < len(line) and line[k].isspace():
        k += 1
    if k >= len(line):
        return True
    nxt = line[k]
    if nxt.isalpha() and nxt.isascii() and nxt.islower():
        return False  # English sentences start with a capital: "approx. five", "e.g. the"
    m = _WORD_BEFORE.search(line, max(0, i - 40), i)
    if m is None or line[i + 1:i + 2] == ".":  # no word before, or an ellipsis "..."
        return True
    word = m.group(1).lower()
    if word in _NEVER_FINAL:
        return False
    if len(word) == 1 and m.group(1).isupper():
        return False  # an initial: "J. Smith"
    if word in _MAYBE_FINAL or "." in word:  # "Co.", "U.S."
        after = _WORD_AFTER.match(line, k)
        if after is None:
            return True
        return after.group(0).lower() not in _NAME_CONTINUATIONS
    return True


def _line_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside one line ``text[start:end]`` (no newline inside)."""
    line = text[start:end]
    n = len(line)
    spans: list[tuple[int, int]] = []
    seg = 0
    i = 0
    while i < n:
        ch = line[i]
        if ch not in _ALL_ENDERS:
            i += 1
            continue
        j = i + 1
        while j < n and line[j] in _ALL_ENDERS:
            j += 1
        run = line[i:j]
        quote_open = line.count('"', seg, i) % 2 == 1
        while j < n and line[j] in _CLOSERS:
            if line[j] in "\"'":
                # ASCII quotes are ambiguous: take one only when it closes an open "…"
                # or is followed by a space / the line end.
                closes = (line[j] == '"' and quote_open) or j + 1 >= n or line[j + 1].isspace()
                if not closes:
                    break
                quote_open = False
            j += 1
        if any(c in _ZH_ENDERS for c in run):
            ends = True
        elif any(c in _ASCII_ENDERS for c in run):
            ends = j >= n or line[j].isspace() or _is_cjk(line[j]) or line[j] in "“‘"
        else:
            ends = _period_ends(line, i, j)
        if ends:
            spans.append((seg, j))
            seg = j
        i = j
    spans.append((seg, n))
    out: list[tuple[int, int]] = []
    for a, b in spans:
        while a < b and line[a].isspace():
            a += 1
        while b > a and line[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((start + a, start + b))
    return out


def _lines(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text)]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` over ``text``, whitespace-trimmed, in order.

    Ends: 。！？；… (runs like …… or ！？ stay together), ``! ? ;`` before a space, a
    Chinese character or the line end, and ``.`` before a space/line end unless it
    follows an abbreviation ("Co.", "U.S.", "Mr.") or precedes a lowercase word.
    Closing quotes/brackets after an ender belong to the sentence. Every newline ends
    a sentence. Decimals (2.7亿) and ratios (6∶4) are never split.
    """
    spans: list[tuple[int, int]] = []
    for a, b in _lines(text):
        spans.extend(_line_sentences(text, a, b))
    return spans


# ---------------------------------------------------------------------------- headings

HEADING_MAX_CHARS = 50
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_BRACKET_HEADING = re.compile(r"^[【\[［〖].+[】\]］〗]$")
_NOT_HEADING_START = re.compile(r"^(?:[-*+•·>|]\s|\||>|```|<!--)")
_NOT_HEADING_END = frozenset(":：,，、")
_HAS_WORD = re.compile(r"[0-9A-Za-z\u3400-\u9fff]")
_BRACKET_LEVEL = 50
_PLAIN_LEVEL = 100


def _heading_level(line: str, standalone: bool) -> int | None:
    """Level of a heading line (Markdown 1-6, 【栏目】 50, plain 100), or None."""
    stripped = line.strip()
    m = _MD_HEADING.match(line)
    if m:
        return len(m.group(1)) if m.group(2) else None
    if not standalone or len(stripped) > HEADING_MAX_CHARS or not _HAS_WORD.search(stripped):
        return None
    if _NOT_HEADING_START.match(stripped) or stripped[-1] in _NOT_HEADING_END:
        return None
    if any(c in _ZH_ENDERS or c in _ASCII_ENDERS for c in stripped):
        return None
    if stripped.endswith("."):
        return None
    return _BRACKET_LEVEL if _BRACKET_HEADING.match(stripped) else _PLAIN_LEVEL


def _heading_text(line: str) -> str:
    m = _MD_HEADING.match(line)
    return (m.group(2) if m else line).strip()


# ---------------------------------------------------------------------------- chunking


@dataclass
class _Unit:
    start: int  # includes the heading run for a section's first unit
    end: int
    para_end: bool


@dataclass
class _Section:
    context: str
    head_start: int | None  # start of the heading run introducing the section
    head_end: int | None
    units: list[_Unit]


_BREAK_CHARS = frozenset("，,、；;：: \t\u3000）)")


def _split_long(text: str, a: int, b: int, first_limit: int, limit: int) -> list[tuple[int, int]]:
    """Cut the sentence text[a:b] into pieces of at most ``limit`` chars (first: ``first_limit``)."""
    pieces: list[tuple[int, int]] = []
    lim = max(first_limit, 1)
    limit = max(limit, 1)
    while b - a > lim:
        cut = -1
        for p in range(a + lim - 1, a + lim // 2 - 1, -1):
            if text[p] in _BREAK_CHARS:
                cut = p + 1
                break
        if cut == -1:
            cut = a + lim
            # don't cut a Latin word or a number in half if a boundary is close
            for p in range(cut, max(a + lim // 2, cut - 20), -1):
                if not (text[p - 1].isascii() and text[p - 1].isalnum() and text[p].isascii() and text[p].isalnum()):
                    cut = p
                    break
        end = cut
        while end > a and text[end - 1].isspace():
            end -= 1
        pieces.append((a, end))
        a = cut
        while a < b and text[a].isspace():
            a += 1
        lim = limit
    if a < b:
        pieces.append((a, b))
    return pieces


def _sections(article: Article, max_chars: int) -> tuple[list[_Section], tuple[int, int, str] | None]:
    """Sections with their sentence units, plus a trailing heading run (start, end, context)."""
    body = article.body
    lines = [(a, b) for a, b in _lines(body) if body[a:b].strip()]
    has_blank = any(body[lines[k][1]:lines[k + 1][0]].count("\n") > 1 for k in range(len(lines) - 1))
    stack: list[tuple[int, str]] = []
    sections: list[_Section] = []
    run: tuple[int, int] | None = None  # pending heading run (start, end)
    current: _Section | None = None

    def context() -> str:
        return " · ".join([article.title, *(t for _, t in stack)]) if stack else article.title

    for idx, (ls, le) in enumerate(lines):
        line = body[ls:le]
        before_blank = idx == 0 or body[lines[idx - 1][1]:ls].count("\n") > 1
        after_blank = idx == len(lines) - 1 or body[le:lines[idx + 1][0]].count("\n") > 1
        standalone = (before_blank and after_blank) or not has_blank
        level = _heading_level(line, standalone)
        if level is not None:
            first_in_run = run is None
            text = _heading_text(line)
            if level == _PLAIN_LEVEL:
                if first_in_run:
                    stack = [h for h in stack if h[0] < _PLAIN_LEVEL]
                level = _PLAIN_LEVEL + sum(1 for h in stack if h[0] >= _PLAIN_LEVEL)
            else:
                stack = [h for h in stack if h[0] < level]
            stack.append((level, text))
            hs = ls + (len(line) - len(line.lstrip()))
            run = (hs, le) if run is None else (run[0], le)
            continue
        spans = _line_sentences(body, ls, le)
        if not spans:
            continue
        if current is None or run is not None:
            current = _Section(context(), run[0] if run else None, run[1] if run else None, [])
            sections.append(current)
        for k, (a, b) in enumerate(spans):
            is_last = k == len(spans) - 1
            para_end = is_last and (after_blank or not has_blank)
            section_first = not current.units
            prefix_start = current.head_start if section_first and current.head_start is not None else a
            if b - a <= max_chars:
                pieces = [(a, b)]  # never cut a sentence that fits, even with a heading before it
            else:
                first_limit = max(max_chars - (a - prefix_start), max_chars // 3, 1)
                pieces = _split_long(body, a, b, first_limit, max_chars)
            for p, (pa, pb) in enumerate(pieces):
                start = prefix_start if p == 0 else pa
                current.units.append(_Unit(start, pb, para_end and p == len(pieces) - 1))
        run = None
    trailing = (run[0], run[1], context()) if run is not None else None
    return sections, trailing


def _pack(units: list[_Unit], max_chars: int, overlap: int) -> list[tuple[int, int]]:
    """Group consecutive units into chunks; returns (first, last) unit indexes."""

    def span(a: int, b: int) -> int:
        return units[b].end - units[a].start

    groups: list[tuple[int, int]] = []
    nxt = 0
    m = len(units)
    while nxt < m:
        a = nxt
        if groups and overlap > 0:
            prev_a, prev_b = groups[-1]
            a = max(prev_b + 1 - overlap, prev_a + 1)
            while a < nxt and span(a, nxt) > max_chars:
                a += 1
        b = nxt
        while b + 1 < m and span(a, b + 1) <= max_chars:
            b += 1
        if b < m - 1 and not units[b].para_end:
            for c in range(b - 1, nxt - 1, -1):
                if units[c].para_end and span(a, c) >= max_chars // 2:
                    b = c
                    break
        groups.append((a, b))
        nxt = b + 1
    return groups


def chunk_article(article: Article, max_chars: int = 320, overlap_sentences: int = 1) -> list[Chunk]:
    """Split ``article.body`` into chunks of whole sentences, at most ``max_chars`` each.

    A chunk is longer than ``max_chars`` only when it holds one sentence (with the
    heading attached before it) that is itself too long to cut near a comma. The next
    chunk repeats the last ``overlap_sentences`` sentence(s) of the previous one when
    both sit in the same section and it fits.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if overlap_sentences < 0:
        raise ValueError("overlap_sentences must be >= 0")
    body = article.body
    sections, trailing = _sections(article, max_chars)
    spans: list[tuple[int, int, str]] = []
    for section in sections:
        for a, b in _pack(section.units, max_chars, overlap_sentences):
            spans.append((section.units[a].start, section.units[b].end, section.context))
    if trailing is not None:
        t_start, t_end, t_ctx = trailing
        if spans and t_end - spans[-1][0] <= max_chars:
            s, _, ctx = spans[-1]
            spans[-1] = (s, t_end, ctx)  # a closing byline/caption joins the last chunk
        else:
            spans.append((t_start, t_end, t_ctx))
    prefix = f"{article.article_id}#{article.content_hash[:8]}"
    chunks: list[Chunk] = []
    for index, (s, e, ctx) in enumerate(spans):
        while s < e and body[s].isspace():
            s += 1
        while e > s and body[e - 1].isspace():
            e -= 1
        chunks.append(Chunk(
            chunk_id=f"{prefix}-{index:04d}",
            article_id=article.article_id,
            index=index,
            text=body[s:e],
            start=s,
            end=e,
            context=ctx,
        ))
    return chunks
