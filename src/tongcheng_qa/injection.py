"""Recognises text planted in an article to steer an AI ("忽略以上指令…", "ignore previous
instructions…"). Such sentences are never evidence and are never quoted: documents are data."""

from __future__ import annotations

import re

from .chunking import split_sentences

_INSTRUCTION = re.compile(
    r"忽略(?:以上|上述|之前|前面|先前)?(?:所有|全部|一切)?的?(?:指令|指示|提示|要求|规则)|你现在是|系统提示|请你扮演|"
    r"\bignore (?:all |any )?(?:the )?(?:previous|above|prior|earlier|preceding) (?:instructions?|prompts?|rules)\b|"
    r"\bdisregard (?:all |any )?(?:the )?(?:previous|above|prior) \w+|\byou are now\b|\bsystem prompt\b|"
    r"\bnew instructions?:",
    re.IGNORECASE,
)


def is_instruction(sentence: str) -> bool:
    return bool(_INSTRUCTION.search(sentence))


def without_instructions(text: str) -> str:
    """``text`` with instruction-like sentences blanked out (same length, offsets kept)."""
    out = text
    for a, b in split_sentences(text):
        if is_instruction(text[a:b]):
            out = out[:a] + " " * (b - a) + out[b:]
    return out
