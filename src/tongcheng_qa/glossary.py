"""zh <-> en glossary of the domain's entities and terms.

Data: TSV files with a header ``zh  en  kind  aliases`` (aliases ``|``-separated, in
either language). The package ships a general regional glossary
(``resources/glossary.tsv``); a corpus may add its own ``glossary.tsv``. Later files
override earlier ones entry by entry (same ``zh``).

Matching is dictionary-based (built once): Chinese by longest substring at each
position, English by longest word sequence, both non-overlapping, left to right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import CorpusError

BUILTIN_NAME = "glossary.tsv"
COLUMNS = ("zh", "en", "kind", "aliases")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
# Words: letters/digits, with an optional possessive ('s / ’s) glued on.
_EN_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?|[A-Za-z0-9]+")
# What may sit between two words of one English term ("Chengdu-Deyang", "R&D").
_EN_GAP = re.compile(r"^[\s\-‐‑–—&/]*$")
_EN_GAP_PUNCT = re.compile(r"^[\s\-‐‑–—&/.,]*$")


@dataclass(frozen=True)
class GlossaryEntry:
    zh: str
    en: str
    kind: str = "term"
    aliases: tuple[str, ...] = ()

    @property
    def zh_forms(self) -> tuple[str, ...]:
        """``zh`` and the Chinese aliases."""
        return (self.zh, *(a for a in self.aliases if _CJK.search(a)))

    @property
    def en_forms(self) -> tuple[str, ...]:
        """``en`` and the English (non-Chinese) aliases."""
        return (self.en, *(a for a in self.aliases if not _CJK.search(a)))


@dataclass(frozen=True)
class GlossaryMatch:
    entry: GlossaryEntry
    start: int
    end: int
    surface: str  # the text as it appears


def _en_words(text: str) -> list[tuple[str, int, int]]:
    """(normalised word, start, end) for every Latin word; possessives stripped."""
    out: list[tuple[str, int, int]] = []
    for m in _EN_WORD.finditer(text):
        w = m.group(0).lower().replace("’", "'")
        if w.endswith("'s"):
            w = w[:-2]
        out.append((w, m.start(), m.end()))
    return out


def _singulars(word: str) -> list[str]:
    """Candidate singular forms of ``word`` (the word itself first)."""
    forms = [word]
    if len(word) > 3 and word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if len(word) > 3 and word.endswith("es"):
        forms.append(word[:-2])
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    return forms


def _en_key(term: str) -> tuple[str, ...]:
    return tuple(w for w, _, _ in _en_words(term))


class Glossary:
    """An immutable set of entries with prebuilt matchers."""

    def __init__(self, entries: Iterable[GlossaryEntry]) -> None:
        by_zh: dict[str, GlossaryEntry] = {}
        for e in entries:
            by_zh[e.zh] = e  # later wins
        self._entries: tuple[GlossaryEntry, ...] = tuple(by_zh.values())
        # Chinese: surface -> entry; first char -> candidate lengths, longest first.
        self._zh: dict[str, GlossaryEntry] = {}
        for e in self._entries:  # aliases first, then primary forms win on conflicts
            for form in e.zh_forms[1:]:
                self._zh.setdefault(form, e)
        for e in self._entries:
            self._zh[e.zh] = e
        lengths: dict[str, set[int]] = {}
        for form in self._zh:
            lengths.setdefault(form[0], set()).add(len(form))
        self._zh_lengths = {c: sorted(ls, reverse=True) for c, ls in lengths.items()}
        # English: word tuple -> (entry, punctuation allowed between words).
        self._en: dict[tuple[str, ...], tuple[GlossaryEntry, bool]] = {}
        for primary in (False, True):
            for e in self._entries:
                forms = e.en_forms[:1] if primary else e.en_forms[1:]
                for form in forms:
                    key = _en_key(form)
                    if not key:
                        continue
                    punct = bool(re.search(r"[.,]", form))
                    if primary:
                        self._en[key] = (e, punct)
                    else:
                        self._en.setdefault(key, (e, punct))
        # Every proper prefix of a key, so a scan stops as soon as no term can continue.
        self._en_prefixes: set[tuple[str, ...]] = {k[:j] for k in self._en for j in range(1, len(k))}

    # -- container -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[GlossaryEntry]:
        return iter(self._entries)

    @property
    def entries(self) -> tuple[GlossaryEntry, ...]:
        return self._entries

    # -- lookups ---------------------------------------------------------------
    def zh_terms(self) -> list[str]:
        """Every Chinese form (names and aliases), longest first: a jieba user dictionary."""
        return sorted(self._zh, key=lambda s: (-len(s), s))

    def english_for(self, zh: str) -> str | None:
        entry = self._zh.get(zh.strip())
        return entry.en if entry else None

    def chinese_for(self, en: str) -> str | None:
        matches = self.match_english(en)
        if len(matches) == 1 and matches[0].start == 0 and matches[0].end >= len(en.rstrip(" .?!")):
            return matches[0].entry.zh
        return None

    # -- matching --------------------------------------------------------------
    def match_chinese(self, text: str) -> list[GlossaryMatch]:
        """Non-overlapping occurrences of Chinese forms, longest first, in text order."""
        cands: list[tuple[int, int, GlossaryEntry]] = []
        n = len(text)
        for i, ch in enumerate(text):
            for length in self._zh_lengths.get(ch, ()):
                if i + length <= n:
                    entry = self._zh.get(text[i:i + length])
                    if entry is not None:
                        cands.append((i, i + length, entry))
        chosen = _select_longest([(s, e, e - s, entry) for s, e, entry in cands], n)
        return [GlossaryMatch(entry, s, e, text[s:e]) for s, e, entry in chosen]

    def match_english(self, text: str) -> list[GlossaryMatch]:
        """Non-overlapping whole-word occurrences of English forms, case-insensitive.

        Longest term (in words, then characters) first. Hyphens and spaces are
        interchangeable; plurals (-s/-es/-ies) and possessives ('s) are accepted.
        """
        words = _en_words(text)
        n = len(words)
        cands: list[tuple[int, int, int, GlossaryEntry]] = []
        for i in range(n):
            head: tuple[str, ...] = ()
            for length in range(1, n - i + 1):
                if length > 1:
                    head = (*head, words[i + length - 2][0])
                    if head not in self._en_prefixes:
                        break
                last_word, _, last_end = words[i + length - 1]
                for last in _singulars(last_word):
                    hit = self._en.get((*head, last))
                    if hit is None:
                        continue
                    entry, punct = hit
                    gap_re = _EN_GAP_PUNCT if punct else _EN_GAP
                    if all(gap_re.match(text[words[k][2]:words[k + 1][1]]) for k in range(i, i + length - 1)):
                        cands.append((i, i + length, length * 10_000 + last_end - words[i][1], entry))
                        break
        chosen = _select_longest(cands, n)
        return [GlossaryMatch(entry, words[a][1], words[b - 1][2], text[words[a][1]:words[b - 1][2]])
                for a, b, entry in chosen]

    def find_chinese(self, text: str) -> list[GlossaryEntry]:
        """Entries whose Chinese name or alias occurs in ``text`` (first occurrence order)."""
        return _unique(m.entry for m in self.match_chinese(text))

    def expand_english(self, text: str) -> list[GlossaryEntry]:
        """Entries whose English name or alias occurs in ``text`` (first occurrence order)."""
        return _unique(m.entry for m in self.match_english(text))


def _select_longest(cands: list[tuple[int, int, int, GlossaryEntry]], n: int) -> list[tuple[int, int, GlossaryEntry]]:
    """Pick non-overlapping candidates (start, end, weight, entry): heaviest first, then leftmost."""
    taken = bytearray(n)
    chosen: list[tuple[int, int, GlossaryEntry]] = []
    for s, e, _, entry in sorted(cands, key=lambda c: (-c[2], c[0])):
        if not any(taken[s:e]):
            taken[s:e] = b"\x01" * (e - s)
            chosen.append((s, e, entry))
    chosen.sort(key=lambda c: c[0])
    return chosen


def _unique(entries: Iterable[GlossaryEntry]) -> list[GlossaryEntry]:
    seen: set[str] = set()
    out: list[GlossaryEntry] = []
    for e in entries:
        if e.zh not in seen:
            seen.add(e.zh)
            out.append(e)
    return out


# ---------------------------------------------------------------------------- loading


def parse_glossary(text: str, name: str) -> list[GlossaryEntry]:
    """Parse TSV text. Raises :class:`CorpusError` naming ``name:line`` and the fix."""
    entries: list[GlossaryEntry] = []
    columns: list[str] | None = None
    for lineno, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        where = f"{name}:{lineno}"
        if columns is None:
            columns = [f.lower() for f in fields]
            if columns[:3] != list(COLUMNS[:3]) or columns[3:] not in ([], ["aliases"]):
                raise CorpusError(where, f"the first line must be the header {'<TAB>'.join(COLUMNS)}, got {line!r}")
            continue
        while len(fields) > len(columns) and fields[-1] == "":
            fields.pop()
        if len(fields) < 2 or len(fields) > len(columns):
            raise CorpusError(where, f"expected {len(columns)} tab-separated columns ({', '.join(columns)}), "
                                     f"got {len(fields)}; separate columns with a TAB, not spaces")
        fields += [""] * (len(columns) - len(fields))
        zh, en, kind = fields[0], fields[1], fields[2]
        aliases = tuple(a.strip() for a in (fields[3] if len(fields) > 3 else "").split("|") if a.strip())
        if not zh or not en:
            raise CorpusError(where, "both `zh` and `en` must be filled in")
        if not _CJK.search(zh):
            raise CorpusError(where, f"`zh` must be the Chinese term, got {zh!r}; put English names in `en`")
        entries.append(GlossaryEntry(zh=zh, en=en, kind=(kind or "term").lower(), aliases=aliases))
    if columns is None:
        raise CorpusError(name, f"is empty; start it with the header {'<TAB>'.join(COLUMNS)}")
    return entries


def builtin_glossary_text() -> str:
    return resources.files("tongcheng_qa").joinpath("resources", BUILTIN_NAME).read_text(encoding="utf-8")


def load_glossary(paths: Iterable[Path], include_builtin: bool = True, *, missing_ok: bool = False) -> Glossary:
    """The packaged glossary (optional) plus ``paths``, later files overriding earlier ones.

    A missing file raises :class:`CorpusError` unless ``missing_ok``.
    """
    entries: list[GlossaryEntry] = []
    if include_builtin:
        entries += parse_glossary(builtin_glossary_text(), f"tongcheng_qa/resources/{BUILTIN_NAME}")
    for path in paths:
        path = Path(path)
        if not path.is_file():
            if missing_ok:
                continue
            raise CorpusError(str(path), "glossary file not found; create it (TSV with header zh, en, kind, aliases) or remove it from the settings")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CorpusError(str(path), "glossary is not UTF-8 text; re-save it as UTF-8") from exc
        entries += parse_glossary(text, str(path))
    return Glossary(entries)
