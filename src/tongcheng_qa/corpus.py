"""Corpus files -> :class:`Article`.

Supported: Markdown with optional YAML front matter (``.md``/``.markdown``), plain text
(``.txt``: title = first non-empty line) and HTML (``.html``/``.htm``).

The body is normalised exactly once, here (:func:`normalize_text`), and the normalised
string *is* ``Article.body``: every chunk and citation offset refers to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from .errors import CorpusError
from .types import Article

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".md", ".markdown", ".txt", ".html", ".htm"})
#: Files larger than this are refused (a news article is a few KB).
DEFAULT_MAX_BYTES = 5 * 1024 * 1024

_FIX_ENCODING = "re-save it as UTF-8 text"

# ---------------------------------------------------------------------------- normalising

_KEEP_CONTROLS = {"\n", "\t"}
_BLANK_RUNS = re.compile(r"\n{3,}")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _drop_char(ch: str) -> bool:
    if ch in _KEEP_CONTROLS:
        return False
    # Cc: control characters; Cf: format characters (zero-width space/joiners, BOM,
    # bidi marks, soft hyphen). Neither is visible text.
    return unicodedata.category(ch) in ("Cc", "Cf")


def normalize_text(text: str) -> str:
    """The one normalisation every body goes through (idempotent).

    NFC (never NFKC: full-width punctuation stays as written), CRLF/CR -> LF, BOM,
    zero-width and control characters dropped (except newline and tab), trailing
    whitespace trimmed on every line, runs of blank lines collapsed to one blank line,
    leading/trailing blank space of the whole text removed.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if not _drop_char(ch))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def _clean_line(text: str) -> str:
    """A one-line metadata value (title etc.): normalised, inner whitespace collapsed."""
    return " ".join(normalize_text(text).split())


def content_hash(title: str, date: str | None, source: str | None, url: str | None, body: str) -> str:
    payload = json.dumps([title, date, source, url, body], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- decoding


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CorpusError(name, f"has a UTF-16 byte-order mark but is not valid UTF-16 ({exc.reason}); {_FIX_ENCODING}") from exc
    if b"\x00" in raw:
        raise CorpusError(
            name,
            "looks like a binary file (contains NUL bytes), not a text article; "
            "remove it from the corpus folder or convert it to .md/.txt/.html",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise CorpusError(name, f"is neither UTF-8 nor GB18030 text (undecodable byte at offset {exc.start}); {_FIX_ENCODING}") from exc
    # GB18030 maps almost any byte soup to *something*; refuse results that look like it.
    if any(unicodedata.category(ch) in ("Cc", "Co", "Cn") and ch not in "\n\r\t\f" for ch in text):
        raise CorpusError(name, f"is not valid UTF-8 and does not look like GB18030 Chinese text; {_FIX_ENCODING}")
    return text


# ---------------------------------------------------------------------------- formats


class _Parsed:
    __slots__ = ("title", "body", "date", "source", "url")

    def __init__(self, title: str | None, body: str, date: str | None = None,
                 source: str | None = None, url: str | None = None) -> None:
        self.title, self.body, self.date, self.source, self.url = title, body, date, source, url


def _meta_str(value: Any, key: str, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise CorpusError(name, f"front matter `{key}` must be a single value, got a {type(value).__name__}")
    s = _clean_line(str(value))
    return s or None


def _meta_date(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    s = str(value).strip()
    if _DATE_RE.match(s):
        try:
            dt.date.fromisoformat(s)
            return s
        except ValueError:
            pass
    raise CorpusError(name, f"front matter `date` must be a date written YYYY-MM-DD (e.g. 2024-01-19), got {s!r}")


_FRONT_OPEN = re.compile(r"\A---[ \t]*\n")
_FRONT_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_MD_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _parse_markdown(text: str, name: str) -> _Parsed:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta: Mapping[str, Any] = {}
    body = text
    m = _FRONT_OPEN.match(text)
    if m:
        close = _FRONT_CLOSE.search(text, m.end())
        if close is None:
            raise CorpusError(name, "front matter starts with '---' but has no closing '---' line; add one after the last field")
        block = text[m.end():close.start()]
        body = text[close.end():]
        try:
            loaded = yaml.safe_load(block)
        except yaml.YAMLError as exc:
            where = ""
            mark = getattr(exc, "problem_mark", None)
            if mark is not None:
                where = f" at front-matter line {mark.line + 1}, column {mark.column + 1}"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise CorpusError(name, f"front matter is not valid YAML{where}: {problem}; "
                                    "quote values that contain ':' or '#'") from exc
        except (ValueError, TypeError) as exc:  # e.g. `date: 2024-02-30` fails inside the YAML loader
            raise CorpusError(name, f"front matter has an invalid value ({exc}); write dates as YYYY-MM-DD "
                                    "and quote other values") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise CorpusError(name, f"front matter must be `key: value` lines (a mapping), got a {type(loaded).__name__}")
        meta = {str(k).lower(): v for k, v in loaded.items()}
    title = _meta_str(meta.get("title"), "title", name)
    if title is None:
        h1 = _MD_H1.search(body)
        title = _clean_line(h1.group(1)) if h1 else None
    return _Parsed(
        title=title,
        body=body,
        date=_meta_date(meta.get("date"), name),
        source=_meta_str(meta.get("source"), "source", name),
        url=_meta_str(meta.get("url"), "url", name),
    )


def _parse_text(text: str, name: str) -> _Parsed:
    text = normalize_text(text)
    first, _, rest = text.partition("\n")
    return _Parsed(title=_clean_line(first) or None, body=rest)


_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "head")
_BLOCK_TAGS = frozenset({
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "figcaption",
    "dt", "dd", "td", "th", "caption",
})
_CONTAINER_TAGS = frozenset({
    "div", "section", "article", "main", "body", "html", "ul", "ol", "dl", "table", "tbody",
    "thead", "tfoot", "tr", "figure", "header", "footer", "aside", "nav", "center", "form",
}) | _BLOCK_TAGS
_META_DATE = ("article:published_time", "date", "pubdate", "publishdate", "publish_date",
              "dc.date", "dc.date.issued", "og:published_time", "datepublished")
_META_SOURCE = ("source", "og:site_name", "dc.publisher", "publisher", "application-name")
_META_URL = ("og:url", "url", "dc.identifier")
_HTML_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})")


def _hidden(tag: Tag) -> bool:
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return tag.has_attr("hidden") or str(tag.get("aria-hidden") or "").lower() == "true" or "display:none" in style


def _html_blocks(node: Tag) -> list[str]:
    """Visible text of ``node``, one string per block element (inline text joined)."""
    blocks: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        text = "".join(inline)
        inline.clear()
        lines = [" ".join(part.split()) for part in text.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            blocks.append(joined)

    def walk(el: Tag, pre: bool) -> None:
        for child in el.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                s = str(child)
                inline.append(s if pre else re.sub(r"\s+", " ", s))
                continue
            if not isinstance(child, Tag) or _hidden(child):
                continue
            name = child.name.lower()
            if name == "br":
                inline.append("\n")
            elif name in _CONTAINER_TAGS:
                flush()
                walk(child, pre or name == "pre")
                flush()
            else:
                walk(child, pre)

    walk(node, False)
    flush()
    return blocks


def _meta_lookup(soup: BeautifulSoup, keys: tuple[str, ...]) -> str | None:
    found: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        key = str(tag.get("property") or tag.get("name") or tag.get("itemprop") or "").strip().lower()
        content = str(tag.get("content") or "").strip()
        if key and content and key not in found:
            found[key] = content
    for key in keys:
        if key in found:
            return found[key]
    return None


def _parse_html(text: str, name: str) -> _Parsed:
    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    title = _clean_line(title_tag.get_text()) if title_tag else ""
    h1 = soup.find("h1")
    if not title and h1 is not None:
        title = _clean_line(h1.get_text(" "))
    raw_date = _meta_lookup(soup, _META_DATE)
    date = None
    if raw_date and (m := _HTML_DATE.search(raw_date)):
        try:
            date = dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            date = None
    source = _meta_lookup(soup, _META_SOURCE)
    url = _meta_lookup(soup, _META_URL)
    if url is None:
        canonical = soup.find("link", rel="canonical")
        if canonical is not None and canonical.get("href"):
            url = str(canonical.get("href")).strip()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    root = soup.body or soup
    blocks = _html_blocks(root)
    if blocks and title and _clean_line(blocks[0]) == title:
        blocks = blocks[1:]  # the <h1> repeating the title is metadata, like a .txt's first line
    return _Parsed(
        title=title or None,
        body="\n\n".join(blocks),
        date=date,
        source=_clean_line(source) if source else None,
        url=url or None,
    )


# ---------------------------------------------------------------------------- public API


def _article_id(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError as exc:
            raise CorpusError(str(path), f"is not inside the corpus folder {root}; move it there or ingest its own folder") from exc
    return rel.as_posix()


def load_article(path: Path, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Article:
    """Load one corpus file. Raises :class:`CorpusError` naming the file and the fix."""
    path, root = Path(path), Path(root)
    article_id = _article_id(path, root)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise CorpusError(article_id, f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise CorpusError(
                article_id,
                f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit for one article; "
                "split it into separate articles (or raise the size limit)",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(article_id, f"cannot be read ({exc.strerror or exc}); check that it exists and is readable") from exc
    text = _decode(raw, article_id)
    if suffix in (".md", ".markdown"):
        parsed = _parse_markdown(text, article_id)
    elif suffix == ".txt":
        parsed = _parse_text(text, article_id)
    else:
        parsed = _parse_html(text, article_id)
    body = normalize_text(parsed.body)
    if not body:
        raise CorpusError(article_id, "has no article text (empty, or only a title/front matter); add the article body or remove the file")
    title = parsed.title or _clean_line(path.stem) or article_id
    return Article(
        article_id=article_id,
        title=title,
        body=body,
        date=parsed.date,
        source=parsed.source,
        url=parsed.url,
        content_hash=content_hash(title, parsed.date, parsed.source, parsed.url, body),
    )


def _skipped(name: str) -> bool:
    return name.startswith(".") or name.lower().startswith("glossary.")


def discover(root: Path) -> list[Path]:
    """Corpus files under ``root``, recursively, sorted by their article id.

    Skips hidden files and folders, ``glossary.*`` files and unsupported suffixes.
    """
    root = Path(root)
    if not root.exists():
        raise CorpusError(str(root), "corpus folder does not exist; create it or pass the folder that holds the articles")
    if not root.is_dir():
        raise CorpusError(str(root), "is a file, not a folder; pass the folder that holds the articles")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fname in filenames:
            if _skipped(fname) or Path(fname).suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            found.append(Path(dirpath) / fname)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def load_corpus(root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[list[Article], list[CorpusError]]:
    """Load every corpus file under ``root``; bad files are returned as errors, not raised.

    A missing ``root`` raises :class:`CorpusError`.
    """
    articles: list[Article] = []
    errors: list[CorpusError] = []
    for path in discover(root):
        try:
            articles.append(load_article(path, root, max_bytes=max_bytes))
        except CorpusError as exc:
            errors.append(exc)
    return articles, errors
