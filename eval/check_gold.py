#!/usr/bin/env python3
"""Validate eval/gold.jsonl against the DESIGN.md "Evaluation dataset" contract.

Stdlib only. Usage (from the repository root or anywhere):

    python eval/check_gold.py [--gold eval/gold.jsonl] [--body FILE]

Checks
  * schema: required keys and types, allowed values of `lang` / `type`, unique ids,
    no unknown keys (the only extra key allowed is `evidence`);
  * unanswerable items: answer "UNANSWERABLE", sources [], must_include [], evidence [];
    answerable items: sources ["000_seed.md"], non-empty must_include and evidence;
  * followup items carry a `history` (user turn, then assistant turn); others do not;
  * `question` language: zh questions contain CJK, en questions contain none;
  * the reference `answer` itself satisfies its `must_include` (harness normalisation:
    case-insensitive, full-width digits/punctuation folded to ASCII);
  * zh must_include: at least one alternative of each item occurs verbatim in the article body;
  * en must_include: at least one alternative of each item occurs verbatim in the body or is
    an ASCII/English form (those are printed for manual review);
  * evidence: every string occurs verbatim in the body, is <= 40 characters and lies inside
    one sentence (contains no sentence terminator or line break);
  * prints counts by lang and type (and lang x type) and the shares of each.

The article body is read from corpus/000_seed.md (YAML front matter between `---` lines
removed) when it exists, else from the seed .txt with its page furniture stripped.
Exit status 0 when there are no errors, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_GOLD = REPO / "eval" / "gold.jsonl"
CORPUS_MD = REPO / "corpus" / "000_seed.md"
SEED_TXT = Path("/work/shared/seed/chengdu-daily-2024-01-19-jinshi-park.txt")
ARTICLE_ID = "000_seed.md"

REQUIRED = {"id": str, "lang": str, "question": str, "answer": str,
            "must_include": list, "sources": list, "type": str}
OPTIONAL = {"history": list, "evidence": list}
LANGS = {"zh", "en"}
TYPES = ("factoid", "multi_hop", "unanswerable", "followup")
TARGET_LANG = {"zh": 0.60, "en": 0.40}
TARGET_TYPE = {"factoid": 0.55, "multi_hop": 0.15, "unanswerable": 0.15, "followup": 0.15}
TOLERANCE = 0.08
MAX_EVIDENCE = 40
SENTENCE_BREAK = re.compile(r"[。！？!?；;\n]")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def read_body() -> tuple[str, str]:
    """Return (body, where it came from)."""
    if CORPUS_MD.exists():
        text = CORPUS_MD.read_text(encoding="utf-8")
        if text.startswith("---"):
            lines = text.splitlines(keepends=True)
            for i in range(1, len(lines)):
                if lines[i].strip() == "---":
                    text = "".join(lines[i + 1:])
                    break
        return text.strip("\n"), str(CORPUS_MD)
    lines = SEED_TXT.read_text(encoding="utf-8").splitlines()
    # page furniture: hotline line, date line, title line at the top; `-->` line at the end
    start = 0
    for i, line in enumerate(lines):
        if re.fullmatch(r"\s*\d{4}年\d{1,2}月\d{1,2}日\s*", line):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            start = j + 1  # skip the title line too
            break
    body = [ln for ln in lines[start:] if not ln.lstrip().startswith("-->")]
    return "\n".join(body).strip("\n"), str(SEED_TXT) + " (furniture stripped)"


def norm(s: str) -> str:
    """Harness-style normalisation: full-width -> ASCII (NFKC), ratio colon -> ':', casefold."""
    s = unicodedata.normalize("NFKC", s).replace("\u2236", ":")
    return s.casefold()


def alternatives(item) -> list[str]:
    return list(item) if isinstance(item, list) else [item]


def is_english_form(s: str) -> bool:
    return bool(s) and all(ord(c) < 128 for c in s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    ap.add_argument("--body", type=Path, help="read the article body from this file instead")
    args = ap.parse_args()

    if args.body:
        body, where = args.body.read_text(encoding="utf-8"), str(args.body)
    else:
        body, where = read_body()
    print(f"article body: {where} ({len(body)} chars)")

    errors: list[str] = []
    review: list[str] = []
    seen_ids: set[str] = set()
    items = []

    def err(qid, msg):
        errors.append(f"{qid}: {msg}")

    for lineno, line in enumerate(args.gold.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"line {lineno}: blank line")
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {lineno}: invalid JSON: {e}")
            continue
        if not isinstance(d, dict):
            errors.append(f"line {lineno}: not a JSON object")
            continue
        qid = d.get("id", f"line {lineno}")
        # ---- schema
        for k, t in REQUIRED.items():
            if k not in d:
                err(qid, f"missing key {k!r}")
            elif not isinstance(d[k], t):
                err(qid, f"{k!r} must be {t.__name__}")
        for k in d:
            if k not in REQUIRED and k not in OPTIONAL:
                err(qid, f"unknown key {k!r}")
        for k, t in OPTIONAL.items():
            if k in d and not isinstance(d[k], t):
                err(qid, f"{k!r} must be {t.__name__}")
        if any(k not in d or not isinstance(d[k], REQUIRED[k]) for k in REQUIRED):
            continue
        if not re.fullmatch(r"q\d{3,}", qid):
            err(qid, "id should look like q001")
        if qid in seen_ids:
            err(qid, "duplicate id")
        seen_ids.add(qid)
        lang, typ = d["lang"], d["type"]
        if lang not in LANGS:
            err(qid, f"lang {lang!r} not in {sorted(LANGS)}")
        if typ not in TYPES:
            err(qid, f"type {typ!r} not in {TYPES}")
        if not d["question"].strip() or not d["answer"].strip():
            err(qid, "empty question or answer")
        items.append(d)

        # ---- question language
        has_cjk = bool(CJK.search(d["question"]))
        if lang == "zh" and not has_cjk:
            err(qid, "zh question without Chinese characters")
        if lang == "en" and has_cjk:
            err(qid, "en question contains Chinese characters")
        if lang == "en" and typ != "unanswerable" and not re.search(r"[A-Za-z]{3}", d["answer"]):
            err(qid, "en answer has no English text")
        if lang == "zh" and typ != "unanswerable" and not CJK.search(d["answer"]):
            err(qid, "zh answer has no Chinese text")

        # ---- must_include shape
        for item in d["must_include"]:
            alts = alternatives(item)
            if not alts or not all(isinstance(a, str) and a.strip() for a in alts):
                err(qid, f"bad must_include item {item!r}")

        # ---- history
        hist = d.get("history")
        if typ == "followup":
            if not hist:
                err(qid, "followup without history")
        elif hist:
            err(qid, "history given on a non-followup item")
        if hist:
            for turn in hist:
                if (not isinstance(turn, dict) or set(turn) != {"role", "content"}
                        or turn["role"] not in ("user", "assistant")
                        or not isinstance(turn["content"], str) or not turn["content"].strip()):
                    err(qid, f"bad history turn {turn!r}")
            if hist and (hist[0].get("role") != "user" or hist[-1].get("role") != "assistant"):
                err(qid, "history should start with a user turn and end with an assistant turn")

        ev = d.get("evidence", [])
        # ---- type-specific rules
        if typ == "unanswerable":
            if d["answer"] != "UNANSWERABLE":
                err(qid, 'unanswerable answer must be "UNANSWERABLE"')
            if d["sources"] != []:
                err(qid, "unanswerable sources must be []")
            if d["must_include"] != []:
                err(qid, "unanswerable must_include must be []")
            if ev:
                err(qid, "unanswerable evidence must be []")
            continue
        if d["sources"] != [ARTICLE_ID]:
            err(qid, f"answerable sources must be [{ARTICLE_ID!r}]")
        if not d["must_include"]:
            err(qid, "answerable item without must_include")
        if "evidence" not in d or not ev:
            err(qid, "answerable item without evidence")
        if typ == "multi_hop" and len(ev) < 2:
            err(qid, "multi_hop needs evidence from at least two passages")

        # ---- reference answer satisfies must_include
        nans = norm(d["answer"])
        for item in d["must_include"]:
            if not any(norm(a) in nans for a in alternatives(item) if isinstance(a, str)):
                err(qid, f"reference answer does not contain must_include item {item!r}")

        # ---- must_include checkable against the article
        for item in d["must_include"]:
            alts = [a for a in alternatives(item) if isinstance(a, str)]
            in_body = [a for a in alts if a in body]
            if lang == "zh":
                if not in_body:
                    err(qid, f"zh must_include {item!r}: no alternative occurs verbatim in the body")
            else:
                if not in_body:
                    english = [a for a in alts if is_english_form(a)]
                    if english:
                        review.append(f"{qid}: {english} (no alternative verbatim in body)")
                    else:
                        err(qid, f"en must_include {item!r}: not in body and not an ASCII/English form")
                else:
                    extra = [a for a in alts if a not in in_body and is_english_form(a)]
                    if extra:
                        review.append(f"{qid}: English forms {extra} of {in_body[0]!r}")

        # ---- evidence
        for e in ev:
            if not isinstance(e, str) or not e:
                err(qid, f"bad evidence {e!r}")
                continue
            if len(e) > MAX_EVIDENCE:
                err(qid, f"evidence longer than {MAX_EVIDENCE} chars ({len(e)}): {e!r}")
            if SENTENCE_BREAK.search(e):
                err(qid, f"evidence spans a sentence break: {e!r}")
            n = body.count(e)
            if n == 0:
                err(qid, f"evidence not verbatim in body: {e!r}")
            elif n > 1:
                review.append(f"{qid}: evidence occurs {n} times in body: {e!r}")
        if len(set(ev)) != len(ev):
            err(qid, "duplicate evidence strings")

    # ---- counts
    n = len(items)
    print(f"\nquestions: {n}")
    by_lang = Counter(d["lang"] for d in items)
    by_type = Counter(d["type"] for d in items)
    cross = Counter((d["lang"], d["type"]) for d in items)
    print("by lang: " + ", ".join(f"{k}={by_lang[k]} ({by_lang[k] / max(n, 1):.0%})" for k in sorted(LANGS, reverse=True)))
    print("by type: " + ", ".join(f"{t}={by_type[t]} ({by_type[t] / max(n, 1):.0%})" for t in TYPES))
    print("lang x type:")
    print("      " + "".join(f"{t:>14}" for t in TYPES) + f"{'total':>8}")
    for lg in sorted(LANGS, reverse=True):
        print(f"  {lg:<4}" + "".join(f"{cross[(lg, t)]:>14}" for t in TYPES) + f"{by_lang[lg]:>8}")
    warnings = []
    if n < 64:
        errors.append(f"only {n} questions (need at least 64)")
    for k, share in TARGET_LANG.items():
        if abs(by_lang[k] / max(n, 1) - share) > TOLERANCE:
            warnings.append(f"lang {k} share {by_lang[k] / max(n, 1):.0%} far from target {share:.0%}")
    for k, share in TARGET_TYPE.items():
        if abs(by_type[k] / max(n, 1) - share) > TOLERANCE:
            warnings.append(f"type {k} share {by_type[k] / max(n, 1):.0%} far from target {share:.0%}")

    if review:
        print(f"\nfor manual review ({len(review)}): English-only must_include forms / repeated evidence")
        for r in review:
            print("  " + r)
    if warnings:
        print(f"\nwarnings ({len(warnings)}):")
        for w in warnings:
            print("  " + w)
    if errors:
        print(f"\nERRORS ({len(errors)}):")
        for e in errors:
            print("  " + e)
        return 1
    print("\nOK: no errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
