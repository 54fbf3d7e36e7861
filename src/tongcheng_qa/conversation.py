"""Conversations: follow-up questions rewritten as standalone ones, and the session store.

A follow-up ("那它的股比呢?", "And how many are negotiating?") cannot be searched as it
is: the thing it asks about is in the history. A :class:`QuestionRewriter` turns it into a
standalone question in the same language. :class:`RuleBasedRewriter` is deterministic and
model-free (pronoun substitution and ellipsis completion from the glossary's entities);
:class:`LLMRewriter` asks a chat model and falls back to the rules whenever the model
fails or answers with something that is not a question in the right language. Both read
assistant turns as their content only (:func:`answer_content`): the frame of an answer
("据…报道:", "According to … (date):", [n], "Key terms: …", a refusal's source list) names
outlets and titles the user never meant by "it".

Sessions (for the API's multi-turn chat) live behind the :class:`SessionStore` seam;
:class:`SQLiteSessionStore` keeps them in one SQLite file (WAL) that survives restarts.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from .errors import NotFoundError, StoreUnavailableError
from .glossary import Glossary, GlossaryEntry, GlossaryMatch
from .lang import detect_language
from .types import Lang

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str


@runtime_checkable
class QuestionRewriter(Protocol):
    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        """A standalone version of ``question`` (same language); ``question`` itself if it stands alone."""
        ...


# ---------------------------------------------------------------------------- referents

#: Glossary kinds that are vocabulary, not names of things a pronoun points at.
GENERIC_KINDS = frozenset({"term", "industry", "position"})
#: Kinds after which "the companies in X" reads naturally.
PLACE_KINDS = frozenset({"park", "zone", "city", "district", "county", "county-level city", "region", "place",
                         "province", "prefecture"})


@dataclass(frozen=True)
class _Ref:
    """Something a pronoun can point at, as written in the history."""

    surface: str
    entries: tuple[GlossaryEntry, ...]  # empty for a fallback phrase
    start: int  # span in the text it was found in
    end: int

    @property
    def person(self) -> bool:
        return any(e.kind == "person" for e in self.entries)

    @property
    def place(self) -> bool:
        return bool(self.entries) and all(e.kind in PLACE_KINDS for e in self.entries)

    def render(self, lang: Lang) -> str:
        """The referent written for a question in ``lang`` (translated through the glossary if needed)."""
        if detect_language(self.surface) == lang or not self.entries:
            return self.surface
        if lang == "zh":
            return "和".join(e.zh for e in self.entries)
        return " and ".join(_en_with_article(e.en) for e in self.entries)


def _en_with_article(name: str) -> str:
    """"Jinshi cooperative industrial park" takes "the"; "Jinniu District", "Li Bo" do not."""
    words = [w for w in name.split() if w.lower() not in ("of", "and", "the", "in", "for")]
    return f"the {name}" if any(w[:1].islower() for w in words) else name


_ZH_JOIN = re.compile(r"^(?:和|与|及|以及|同|跟|、)$")
_EN_JOIN = re.compile(r"^(?:\s*,?\s*and\s+(?:the\s+)?|\s*,\s*(?:the\s+)?|\s*&\s*)$", re.IGNORECASE)


def _matches(text: str, glossary: Glossary) -> list[GlossaryMatch]:
    found: list[GlossaryMatch] = []
    for m in sorted([*glossary.match_chinese(text), *glossary.match_english(text)], key=lambda m: m.start):
        if not found or m.start >= found[-1].end:
            found.append(m)
    return found


def _refs(text: str, glossary: Glossary, *, named: bool = True) -> list[_Ref]:
    """Glossary entities of ``text`` (named ones, or the generic ones), coordinations merged.

    "金牛区和什邡市" and "Jinniu District and Shifang" become one referent.
    """
    out: list[_Ref] = []
    for m in _matches(text, glossary):
        if (m.entry.kind not in GENERIC_KINDS) != named:
            continue
        start = m.start
        if text[max(0, start - 4):start].lower() == "the ":
            start -= 4
        prev = out[-1] if out else None
        if prev and prev.person == (m.entry.kind == "person") and (
                _ZH_JOIN.match(text[prev.end:m.start]) or _EN_JOIN.match(text[prev.end:m.start])):
            out[-1] = _Ref(text[prev.start:m.end], (*prev.entries, m.entry), prev.start, m.end)
        else:
            out.append(_Ref(text[start:m.end], (m.entry,), start, m.end))
    return out


_ZH_SUBJECT = re.compile(r"^(?:请问)?([\u4e00-\u9fffA-Za-z0-9·]{2,12}?)(?:的|是|有|在|目前|现在|已|将|由|与|和|为)")
_ZH_QWORDS = re.compile(r"什么|哪|谁|几|多少|怎么|如何|为何|是否")
_EN_PROPER = re.compile(r"\b[A-Z][\w'’\-]*(?:\s+(?:of|and|for|the|de)\s+[A-Z][\w'’\-]*|\s+[A-Z][\w'’\-]*)*")
_EN_FUNCTION_START = frozenset(
    "how what which who whom whose when where why is are was were do does did can could will would should "
    "has have had and also so then i".split()
)


def _fallback_ref(text: str) -> _Ref | None:
    """No glossary entity: the Chinese phrase before 的/是/有…, or a capitalised English phrase."""
    m = _ZH_SUBJECT.match(text.strip())
    if m and not _ZH_QWORDS.search(m.group(1)) and not _ZH_PRONOUN.search(m.group(1)):
        return _Ref(m.group(1), (), m.start(1), m.end(1))
    for m in _EN_PROPER.finditer(text):
        words = m.group(0).split()
        while words and words[0].lower() in _EN_FUNCTION_START:
            words = words[1:]
        if words:
            surface = " ".join(words)
            start = text.index(surface, m.start())
            return _Ref(surface, (), start, start + len(surface))
    return None


# ---------------------------------------------------------------------------- assistant turns

#: The glossary line after an English extractive answer ("Key terms: 金牛区 = Jinniu District; ...").
_GLOSS_LINE = re.compile(r"^[ \t]*Key terms[ \t]*[:：].*$", re.MULTILINE | re.IGNORECASE)
#: A list of sources, from its label (at a sentence start) to the end: the refusal's
#: "最相关的来源:《…》(…)" / "Closest sources: “…” (…)", or an LLM's "Sources: …".
_SOURCE_LIST = re.compile(
    r"(?:^|(?<=[。.!?！？;；\s]))(?:(?:最相关的|相关)?来源|参考资料|(?:Closest |Related )?[Ss]ources|References)"
    r"\s*[:：].*\Z", re.DOTALL)
#: A sentence that only says the sources have no answer (a refusal's head).
_REFUSAL_SENTENCE = re.compile(
    r"^\s*(?:抱歉|对不起|Sorry\b)"
    r"|(?:资料|来源|原文|文章)[^。！？]{0,6}(?:没有|未)(?:找到|提到|提及|涉及|说明)"
    r"|\bsources?\b[^.!?]{0,20}\b(?:do not|don't|does not|doesn't|did not|didn't)\s+(?:say|mention|contain|cover)"
    r"|\bnot (?:found |mentioned )?in the sources\b", re.IGNORECASE)
#: Where a sentence ends: after 。！？!? or a newline, or before the space after "." (English).
_SENTENCE_END = re.compile(r"(?<=[。！？!?\n])|(?<=\.)(?=\s)")
#: An attribution before the claim: "据华西晨报(2023-05-02)报道:", "据报道,", "根据…的报道,".
_ZH_FRAME = re.compile(r"(?:根据|据)[^,，。:：；;!?！？\n]{0,30}?报道[:：,，]?\s*")
#: "According to Chengdu Daily (2024-01-19):", "According to the source:", "As reported by X [1],".
_EN_FRAME = re.compile(
    r"(?:^|(?<=[\s.!?]))(?:According to|As reported by|Reported by)\b[^:,\n“\"]{0,80}[:,]\s*", re.MULTILINE)
#: Citation markers: [1], [2, 3], [1-2].
_MARKER = re.compile(r"\s*\[\d+(?:\s*[,，、\-–]\s*\d+)*\]")


def answer_content(text: str) -> str:
    """What an assistant turn says about the world, without the frame around it.

    Answers are wrapped in text that names things the user never asked about: the outlet
    and date of "据成都日报(2024-01-19)报道:" / "According to Chengdu Daily (2024-01-19):",
    [n] markers, the "Key terms: …" line, and in a refusal the apology and the titles of
    the closest sources. A pronoun in the next question points at the question's topic or
    at what the answer *quoted*, never at that frame, so referents are looked for in what
    this returns. A refusal has no content: "".
    """
    text = _GLOSS_LINE.sub("", text)
    text = _SOURCE_LIST.sub("", text)
    text = "".join(s for s in _SENTENCE_END.split(text) if not _REFUSAL_SENTENCE.search(s))
    text = _ZH_FRAME.sub("", text)
    text = _EN_FRAME.sub("", text)
    text = _MARKER.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def _referent_text(turn: Turn) -> str:
    """The text of ``turn`` where referents may be found: a user turn whole, an assistant turn's content."""
    return answer_content(turn.content) if turn.role == "assistant" else turn.content


@dataclass(frozen=True)
class _Context:
    """What the last exchange is about.

    Assistant turns are kept as their content only (:func:`answer_content`): the outlet of
    "据成都日报报道:" or the titles a refusal lists are not what the user's "it" means.
    """

    question: str  # the previous user question
    answer: str  # the content of the assistant's reply to it ("" if none, or a refusal)
    earlier: tuple[str, ...]  # older turns (assistant ones as content), newest first

    @classmethod
    def of(cls, history: Sequence[Turn]) -> _Context | None:
        users = [i for i, t in enumerate(history) if t.role == "user"]
        if not users:
            return None
        i = users[-1]
        answer = next((answer_content(t.content) for t in history[i + 1:] if t.role == "assistant"), "")
        return cls(history[i].content, answer, tuple(_referent_text(t) for t in reversed(history[:i])))

    def main(self, glossary: Glossary) -> _Ref | None:
        """The entity the previous question is about: its first named entity, else the answer's,
        else a subject phrase or generic term of the question, else older turns' entities."""
        for text in (self.question, self.answer):
            if refs := _refs(text, glossary):
                return refs[0]
        generic = _refs(self.question, glossary, named=False)
        if ref := _fallback_ref(self.question) or (generic[0] if generic else None):
            return ref
        return next((refs[0] for text in self.earlier if (refs := _refs(text, glossary))), None)

    def person(self, glossary: Glossary) -> _Ref | None:
        """The person a personal pronoun points at: the one the question named, else the answer's."""
        for text in (self.question, self.answer, *self.earlier):
            for ref in _refs(text, glossary):
                if ref.person:
                    return ref
        return None

    def group(self, glossary: Glossary) -> _Ref | None:
        """What a plural pronoun points at: entities the answer introduced (several), else the main one."""
        asked = {e.zh for r in _refs(self.question, glossary) for e in r.entries}
        new = [r for r in _refs(self.answer, glossary) if not {e.zh for e in r.entries} & asked]
        if len(new) == 1 and len(new[0].entries) > 1:
            return new[0]
        return self.main(glossary)

    def candidates(self, glossary: Glossary) -> list[_Ref]:
        """Every named entity of the exchange, the question's first (for "this agreement" -> its name)."""
        return [r for text in (self.question, self.answer) for r in _refs(text, glossary)]


_ZH_COUNTED = re.compile(r"(?:几|多少)[个家条项位名所种座栋次]?([\u4e00-\u9fff]{1,8}?)(?=[?？,，。!！]|$)")
_EN_COUNTED = re.compile(
    r"\bhow many ([a-z][a-z\- ]*?)(?=\s+(?:are|is|were|was|do|does|did|have|has|had|will|would|can|could|in|at|of|on|"
    r"for|from|to|been)\b|\s*\?|$)", re.IGNORECASE)


def _counted(question: str) -> str | None:
    """The noun a "how many X" / "几家X" question counts: what "其中" / "of them" refers to."""
    m = _ZH_COUNTED.search(question) or _EN_COUNTED.search(question)
    return m.group(1).strip() if m else None


# ---------------------------------------------------------------------------- Chinese rules

_ZH_PRONOUN = re.compile(
    r"它们|他们|她们|其中|(?<!其)它|(?<![其吉])他(?![人方])|她|(?<![尤极与])其(?![他它她实余次间])|(?:这|那)(?=[是有在])")
_ZH_PERSONAL = frozenset({"他", "她", "他们", "她们"})
_ZH_PLURAL = frozenset({"它们", "他们", "她们", "其中"})
_ZH_DETERMINER = re.compile(
    r"(?:这|那)(?:个|家|些|位|项|条|一|所|座|种|次)|(?<!应)该(?![不怎如])|上述|"
    r"(?<![因如从彼为对借由至据])此(?![外前后次时刻])")
_ZH_LEAD = re.compile(r"^(?:那么|那)(?![个家些位项条一所座种次里样边儿])[,，\s]*")
_ZH_WHAT_ABOUT = re.compile(r"^(?:那么|那|还有)?[,，\s]*(.+?)[呢]\s*[?？]?$")
_ZH_ELLIPSIS = re.compile(r"呢\s*[?？]?$|^还有|^那(?![个家些位项条一所座种次里样边儿])")
#: A remainder starting with these is a predicate, so the referent goes right before it.
_ZH_PREDICATE_START = re.compile(
    r"^(?:还|有|在|是|能|会|要|将|已|也|都|又|再|什么|哪|几|多少|怎么|如何|为什么|何时|当时|目前|现在)")
_ZH_SHORT = 6


def _cjk_len(text: str) -> int:
    return len(re.findall(r"[\u4e00-\u9fff]", text))


def _zh_rewrite(q: str, ctx: _Context, glossary: Glossary) -> str:
    own = _refs(q, glossary)
    pronoun = _ZH_PRONOUN.search(q)
    det = _ZH_DETERMINER.search(q)
    what_about = _ZH_WHAT_ABOUT.match(q)
    if own and not pronoun and not det:
        # "那什邡经开区呢?": the previous question, asked about the new entity.
        if what_about and what_about.group(1) == own[0].surface:
            prev = ctx.main(glossary)
            if prev is not None and prev.entries:
                return ctx.question[:prev.start] + own[0].surface + ctx.question[prev.end:]
        return q
    if not (pronoun or det or _ZH_ELLIPSIS.search(q) or _cjk_len(q) <= _ZH_SHORT):
        return q
    body = _ZH_LEAD.sub("", q)
    if pronoun := _ZH_PRONOUN.search(body):
        return _zh_replace_pronoun(body, pronoun, ctx, glossary)
    if det := _ZH_DETERMINER.search(body):
        return _zh_replace_determiner(body, det, ctx, glossary)
    ref = ctx.main(glossary)
    if ref is None:
        return q
    name = ref.render("zh")
    if what_about and not _ZH_PREDICATE_START.match(body):
        return f"{name}的{body}"  # "那股比呢?" -> "X的股比呢?"
    return f"{name}{body}"


def _zh_replace_pronoun(q: str, m: re.Match[str], ctx: _Context, glossary: Glossary) -> str:
    word = m.group(0)
    counted = _counted(ctx.question) if word in _ZH_PLURAL else None
    main = ctx.main(glossary)
    if word in _ZH_PERSONAL and (person := ctx.person(glossary)) is not None:
        name = person.render("zh")
    elif counted:
        name = f"{main.render('zh')}的{counted}" if main else counted
    else:
        ref = ctx.group(glossary) if word in _ZH_PLURAL else main
        if ref is None:
            return q
        name = ref.render("zh")
    if word == "其中":
        name += "中"
    elif word == "其":
        name += "的"
    return q[:m.start()] + name + q[m.end():]


def _zh_replace_determiner(q: str, m: re.Match[str], ctx: _Context, glossary: Glossary) -> str:
    """"这个协议" -> the agreement's name if the history has one ending in 协议, else "X的协议"."""
    rest = q[m.end():]
    for k in range(min(6, len(rest)), 0, -1):
        noun = rest[:k]
        if not re.fullmatch(r"[\u4e00-\u9fff]+", noun):
            continue
        for ref in ctx.candidates(glossary):
            name = ref.render("zh")
            if name.endswith(noun) and name != noun:
                return q[:m.start()] + name + rest[k:]
    main = ctx.main(glossary)
    if main is None:
        return q
    return q[:m.start()] + main.render("zh") + "的" + rest


# ---------------------------------------------------------------------------- English rules

_EN_PRONOUN = re.compile(r"\b(it|its|they|their|them|he|his|him|she|her|this|that|these|those)\b", re.IGNORECASE)
_EN_PERSONAL = frozenset({"he", "his", "him", "she", "her"})
_EN_PLURAL = frozenset({"they", "their", "them", "these", "those"})
_EN_POSSESSIVE = frozenset({"its", "their", "his"})
_EN_DEMONSTRATIVE = frozenset({"this", "that", "these", "those"})
#: After these, "that" is a demonstrative ("about that", "did that"), not a relative pronoun.
_EN_BEFORE_DEICTIC = frozenset(
    "about of in for on at with from under by to into did does do is was are were and or when after before".split())
#: A demonstrative followed by one of these stands alone ("that was", "this is", "that?").
_EN_AFTER_STANDALONE = frozenset(
    "is was are were do does did has have had will would can could mean means be been".split())
_EN_LEAD = re.compile(r"^(?:and|so|also|then|ok|okay)\b[,\s]*", re.IGNORECASE)
_EN_WHAT_ABOUT = re.compile(r"^(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??$", re.IGNORECASE)
_EN_SHORT = 5


def _en_deictic(q: str, m: re.Match[str]) -> bool:
    """Is this pronoun pointing back? "that" often is a relative pronoun ("the company that builds")."""
    if m.group(1).lower() != "that":
        return True
    before = re.findall(r"[A-Za-z']+", q[:m.start()])
    return not before or before[-1].lower() in _EN_BEFORE_DEICTIC


def _possessive(name: str) -> str:
    return name + ("'" if name.endswith("s") else "'s")


def _en_rewrite(q: str, ctx: _Context, glossary: Glossary) -> str:
    own = _refs(q, glossary)
    pronoun = next((m for m in _EN_PRONOUN.finditer(q) if _en_deictic(q, m)), None)
    what_about = _EN_WHAT_ABOUT.match(q)
    if what_about and own and what_about.group(1).strip() == own[0].surface:
        prev = ctx.main(glossary)
        if prev is not None and prev.entries:  # "What about Deyang?": the previous question, about Deyang
            return ctx.question[:prev.start] + own[0].surface + ctx.question[prev.end:]
    if own and not pronoun:
        return q
    led = bool(_EN_LEAD.match(q))
    if not (pronoun or led or what_about or len(q.split()) <= _EN_SHORT):
        return q
    body = _EN_LEAD.sub("", q)
    if pronoun := next((m for m in _EN_PRONOUN.finditer(body) if _en_deictic(body, m)), None):
        return _capitalise(_en_replace_pronoun(body, pronoun, ctx, glossary))
    ref = ctx.main(glossary)
    if ref is None:
        return q
    first = body.split(" ", 1)[0].lower()
    if first in _EN_FUNCTION_START:
        body = body[0].lower() + body[1:]
    return f"For {ref.render('en')}, {body}"


def _en_name(ref: _Ref, at_start: bool) -> str:
    name = ref.render("en")
    if not at_start and name.startswith("The "):
        name = "the " + name[4:]
    return name


def _en_replace_pronoun(q: str, m: re.Match[str], ctx: _Context, glossary: Glossary) -> str:
    word = m.group(1).lower()
    head = q[:m.start()]
    after = re.match(r"\s+([A-Za-z][\w\-]*)", q[m.end():])
    next_word = after.group(1) if after else ""
    # A demonstrative before a noun ("this agreement") replaces the noun too.
    with_noun = (word in _EN_DEMONSTRATIVE and bool(next_word) and next_word.lower() not in _EN_AFTER_STANDALONE
                 and not next_word.lower().endswith(("ed", "ing")))
    tail = q[m.end() + len(after.group(0)):] if with_noun and after else q[m.end():]
    if word in _EN_PLURAL and (counted := _counted(ctx.question)):
        main = ctx.main(glossary)
        place = f" in {_en_name(main, False)}" if main is not None and main.place else ""
        group = f"the {counted}{place}"
        return head + (_possessive(group) if word == "their" else group) + tail
    if word in _EN_PERSONAL:
        ref = ctx.person(glossary) or ctx.main(glossary)
    else:
        ref = ctx.group(glossary) if word in _EN_PLURAL else ctx.main(glossary)
    if ref is None:
        return q
    name = _en_name(ref, not head.strip())
    if with_noun:  # the thing's own name if the history has one ending in that noun, else "the noun of X"
        noun = _singular(next_word.lower())
        for cand in ctx.candidates(glossary):
            cand_name = _en_name(cand, not head.strip())
            if _singular(cand_name.lower().rstrip(".").split()[-1]) == noun:
                return head + cand_name + tail
        return head + f"the {next_word} of {name}" + tail
    if word in _EN_POSSESSIVE or (word == "her" and next_word.lower() not in ("", "and", "or", "to", "in", "about")):
        return head + _possessive(name) + tail
    return head + name + tail


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _capitalise(q: str) -> str:
    return q[:1].upper() + q[1:] if q[:1].islower() else q


# ---------------------------------------------------------------------------- rewriters

class RuleBasedRewriter:
    """Deterministic follow-up rewriting from the glossary's entities.

    A question that depends on the history (a pronoun or demonstrative: 它 其 该 这个 /
    it its they this; an ellipsis: "那…呢?", "还有…", "And …?", "What about …?"; or a very
    short question without an entity of its own) gets the entity the last exchange is about:
    substituted for the pronoun, or put before the question. Everything else is returned
    unchanged. The previous question's entities come first, then those of the previous
    answer's content; the answer's frame (outlet, date, refusal, source list) never counts.
    """

    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        q = question.strip()
        ctx = _Context.of(history) if q else None
        if ctx is None:
            return question
        if detect_language(q) == "zh":
            return _zh_rewrite(q, ctx, self.glossary)
        return _en_rewrite(q, ctx, self.glossary)


REWRITE_PROMPT = {
    "zh": (
        "把用户的追问改写成一个不依赖上下文、可以单独理解的问题:把代词(它、其、该、这个……)换成它所指的名称,"
        "补全省略的主语。用中文输出。如果追问本身已经完整,原样输出。只输出改写后的问题,不要回答它,不要解释。"
    ),
    "en": (
        "Rewrite the user's follow-up as a standalone question that can be understood without the conversation: "
        "replace pronouns (it, its, they, this, ...) with what they refer to and fill in omitted subjects. Write it "
        "in English. If it already stands alone, output it unchanged. Output only the question: do not answer it, "
        "do not explain."
    ),
}
#: How a refusal (an assistant turn without content) is shown to the rewriting model.
NO_ANSWER = {"zh": "(资料中没有找到答案)", "en": "(the sources had no answer)"}
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_LABEL = re.compile(
    r"^(?:standalone question|rewritten question|question|改写后的问题|改写|问题)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’「」『』`"


class LLMRewriter:
    """Follow-up rewriting by a LangChain chat model, with the rules as the safety net.

    Falls back to ``fallback`` on any exception, and on output that is empty, over-long or
    not in the question's language.
    """

    def __init__(self, chat_model: Any, fallback: QuestionRewriter, *, max_chars: int = 300,
                 max_history_turns: int = 6, max_turn_chars: int = 600) -> None:
        self.chat_model = chat_model
        self.fallback = fallback
        self.max_chars = max_chars
        self.max_history_turns = max_history_turns
        self.max_turn_chars = max_turn_chars

    def _messages(self, question: str, history: Sequence[Turn], lang: Lang) -> list[tuple[str, str]]:
        names = {"zh": {"user": "用户", "assistant": "助手"}, "en": {"user": "User", "assistant": "Assistant"}}[lang]
        lines = [f"{names[t.role]}: {self._turn_text(t, lang)[:self.max_turn_chars]}"
                 for t in history[-self.max_history_turns:]]
        convo = "\n".join(lines)
        if lang == "zh":
            human = f"对话:\n{convo}\n\n追问:{question}\n改写后的问题:"
        else:
            human = f"Conversation:\n{convo}\n\nFollow-up: {question}\nStandalone question:"
        return [("system", REWRITE_PROMPT[lang]), ("human", human)]

    @staticmethod
    def _turn_text(turn: Turn, lang: Lang) -> str:
        """A turn as the model sees it: assistant turns as their content only.

        The model would otherwise read the outlet of "According to Chengdu Daily (…):" or a
        refusal's list of titles as candidates for "it", the mistake the rules avoid too.
        A refusal (no content left) is shown as such, so the model knows nothing was found.
        """
        if turn.role == "user":
            return turn.content.strip()
        return answer_content(turn.content) or NO_ANSWER[lang]

    def _clean(self, raw: str) -> str:
        text = _THINK.sub("", raw).strip()
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        return _LABEL.sub("", line).strip().strip(_QUOTES).strip()

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        q = question.strip()
        if not history or not q:
            return question
        lang = detect_language(q)
        try:
            reply = self.chat_model.invoke(self._messages(q, history, lang), temperature=0)
            content = reply.content if hasattr(reply, "content") else reply
            out = self._clean(content if isinstance(content, str) else str(content))
        except Exception:  # noqa: BLE001 - any model/transport failure means: use the rules
            return self.fallback.rewrite(question, history)
        if not out or len(out) > max(self.max_chars, 3 * len(q)) or detect_language(out) != lang:
            return self.fallback.rewrite(question, history)
        return out


# ---------------------------------------------------------------------------- sessions

class SessionNotFoundError(NotFoundError):
    """A session id that the store does not know."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id!r} not found; it may have expired or never existed. "
                         "Start a new session and send its id.")
        self.session_id = session_id


@dataclass(frozen=True)
class StoredTurn:
    role: Role
    content: str
    answer: dict[str, Any] | None  # the Answer JSON for assistant turns, when given
    created_at: float

    def as_turn(self) -> Turn:
        return Turn(self.role, self.content)


@dataclass(frozen=True)
class Session:
    session_id: str
    created_at: float
    turns: tuple[StoredTurn, ...]


@runtime_checkable
class SessionStore(Protocol):
    def create(self) -> str:
        """A new empty session; returns its id."""
        ...

    def append(self, session_id: str, turn: Turn, answer: Mapping[str, Any] | None = None) -> None:
        """Add a turn (and, for an assistant turn, the Answer JSON). Unknown id: SessionNotFoundError."""
        ...

    def extend(self, session_id: str, items: Sequence[tuple[Turn, Mapping[str, Any] | None]]) -> None:
        """Add several turns atomically. Unknown id: SessionNotFoundError."""
        ...

    def history(self, session_id: str, last: int | None = None) -> list[Turn]:
        """The turns in order (the ``last`` ones only, if given). Unknown id: SessionNotFoundError."""
        ...

    def get(self, session_id: str) -> Session:
        """The session with its stored turns. Unknown id: SessionNotFoundError."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    answer TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, seq)
);
"""


class SQLiteSessionStore:
    """Sessions in one SQLite file: WAL journal, a fresh connection per call (thread- and process-safe)."""

    def __init__(self, path: Path | str, *, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; SQLite's "locked", "full", I/O errors become a StoreUnavailableError with the fix."""
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
            try:
                conn.execute("PRAGMA foreign_keys=ON")
                yield conn
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(self._explain(exc)) from exc

    def _explain(self, exc: sqlite3.OperationalError) -> str:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return (f"The sessions database {self.path} is locked by another connection (waited "
                    f"{self.timeout_s:g} s): retry in a moment; if it stays locked, end the program that holds it "
                    "(e.g. an open `sqlite3` shell or a backup in a transaction).")
        if "full" in text:
            return (f"The sessions database {self.path} cannot grow: the disk is full. Free space on that disk "
                    "(or point TONGCHENG_QA_DATA_DIR at a disk with room) and retry; stored sessions are intact.")
        return (f"The sessions database {self.path} cannot be used ({text}); check that the data folder exists, "
                "is writable by the server and that its disk is healthy.")

    @staticmethod
    def _require(conn: sqlite3.Connection, session_id: str) -> float:
        row = conn.execute("SELECT created_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFoundError(session_id)
        return float(row[0])

    def create(self) -> str:
        session_id = uuid.uuid4().hex
        with self._connect() as conn:
            conn.execute("INSERT INTO sessions (id, created_at) VALUES (?, ?)", (session_id, time.time()))
        return session_id

    def append(self, session_id: str, turn: Turn, answer: Mapping[str, Any] | None = None) -> None:
        self.extend(session_id, [(turn, answer)])

    def extend(self, session_id: str, items: Sequence[tuple[Turn, Mapping[str, Any] | None]]) -> None:
        """Append several turns in one transaction (a question and its answer: both or neither)."""
        for turn, _ in items:
            if turn.role not in ("user", "assistant"):
                raise ValueError(f"turn.role must be 'user' or 'assistant', got {turn.role!r}")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading the next seq
            try:
                self._require(conn, session_id)
                (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session_id = ?",
                                      (session_id,)).fetchone()
                now = time.time()
                conn.executemany(
                    "INSERT INTO turns (session_id, seq, role, content, answer, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [(session_id, seq + i, turn.role, turn.content,
                      json.dumps(dict(answer), ensure_ascii=False) if answer is not None else None, now)
                     for i, (turn, answer) in enumerate(items)],
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full, busy, I/O error)
                    conn.execute("ROLLBACK")
                raise

    def _turns(self, conn: sqlite3.Connection, session_id: str, last: int | None) -> list[StoredTurn]:
        rows = conn.execute(
            "SELECT role, content, answer, created_at FROM turns WHERE session_id = ? ORDER BY seq", (session_id,)
        ).fetchall()
        if last is not None:
            rows = rows[-last:] if last > 0 else []
        return [StoredTurn(r[0], r[1], json.loads(r[2]) if r[2] is not None else None, float(r[3])) for r in rows]

    def history(self, session_id: str, last: int | None = None) -> list[Turn]:
        with self._connect() as conn:
            self._require(conn, session_id)
            return [t.as_turn() for t in self._turns(conn, session_id, last)]

    def get(self, session_id: str) -> Session:
        with self._connect() as conn:
            created = self._require(conn, session_id)
            return Session(session_id, created, tuple(self._turns(conn, session_id, None)))
