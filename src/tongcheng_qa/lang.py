"""Language detection for questions and texts: 'zh' or 'en'."""

from __future__ import annotations

import re

from .types import Lang

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def cjk_ratio(text: str) -> float:
    """Share of CJK ideographs among the letters/ideographs of ``text``.

    A Latin word counts as one unit, a CJK character as one unit, so a question like
    "金牛区 and 什邡 signed what agreement?" is mostly English (5 words vs 5 chars ~ tie
    broken towards the words' side by their length below).
    """
    n_cjk = len(_CJK.findall(text))
    words = _LATIN_WORD.findall(text)
    # A Latin word carries about as much meaning as ~1.5 Chinese characters.
    n_latin = 1.5 * len(words)
    total = n_cjk + n_latin
    return n_cjk / total if total else 0.0


def detect_language(text: str) -> Lang:
    """The main language of ``text``: 'zh' when CJK dominates, else 'en'.

    Texts with no letters at all (digits, punctuation) default to 'zh', the corpus language.
    """
    n_cjk = len(_CJK.findall(text))
    if n_cjk == 0 and not _LATIN_WORD.search(text):
        return "zh"
    return "zh" if cjk_ratio(text) >= 0.5 else "en"
