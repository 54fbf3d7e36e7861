"""BM25 over jieba tokens, with the glossary's Chinese terms as a user dictionary.

The index is rebuilt from the document store after each ingest and saved under
``<data_dir>/lexical/gen-<N>`` (written to a temp folder, then renamed), so a reader always
finds either a complete index for the current generation or none (and rebuilds it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_HAS_WORD_CHAR = re.compile(r"[0-9A-Za-z\u3400-\u9fff\uf900-\ufaff]")

# Function words that carry no retrieval signal. Small on purpose: BM25's IDF handles the rest.
_STOPWORDS_ZH = set(
    "的 了 和 与 及 是 在 有 为 对 把 被 将 由 从 向 等 也 都 而 并 或 之 其 这 那 该 此 个 哪 哪些 什么 怎么 "
    "怎样 如何 多少 几 吗 呢 吧 啊 谁 何 是否 哪个 哪里 哪家 请问 一下 还 又 就 所 以 于 上 中 下 后 前 "
    "目前 哪一 多 少 会 能 要 可以 已 已经 按照 通过 还有 另有 另外 此外".split()
)
_STOPWORDS_EN = set(
    "a an the of to in on at for by with from and or but is are was were be been being do does did "
    "what which who whom whose when where why how many much that this these those it its it's as into "
    "about there their they them he she his her we our you your i me my any some can could would should "
    "will shall may might has have had not no yes than then so such per according article say says said "
    "tell me please".split()
)
STOPWORDS = _STOPWORDS_ZH | _STOPWORDS_EN


class LexicalTokenizer:
    """jieba search-mode tokens, lowercased, without punctuation or stopwords."""

    def __init__(self, user_words: Iterable[str] = ()) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        for word in user_words:
            word = word.strip()
            if word and " " not in word:
                self._jieba.add_word(word, freq=20000)

    @property
    def jieba(self) -> object:
        """The underlying jieba tokenizer (with the glossary user dictionary)."""
        return self._jieba

    def tokenize(self, text: str) -> list[str]:
        out: list[str] = []
        for tok in self._jieba.cut_for_search(text):
            tok = tok.strip().lower()
            if not tok or not _HAS_WORD_CHAR.search(tok) or tok in STOPWORDS:
                continue
            if tok.endswith("'s"):
                tok = tok[:-2]
            out.append(tok)
        return out


@dataclass(frozen=True)
class LexicalHit:
    position: int  # index into the chunk-id list the index was built from
    score: float


class LexicalIndex:
    """BM25 (bm25s) over pre-tokenised documents, plus document frequencies for coverage."""

    def __init__(self, chunk_ids: list[str], retriever: object | None, df: dict[str, int]) -> None:
        self.chunk_ids = chunk_ids
        self._retriever = retriever
        self.df = df
        self.n_docs = len(chunk_ids)

    @classmethod
    def build(cls, chunk_ids: Sequence[str], token_lists: Sequence[list[str]]) -> LexicalIndex:
        import bm25s

        df: Counter[str] = Counter()
        for toks in token_lists:
            df.update(set(toks))
        retriever = None
        if chunk_ids:
            retriever = bm25s.BM25()
            retriever.index([list(t) or [""] for t in token_lists], show_progress=False)
        return cls(list(chunk_ids), retriever, dict(df))

    def idf(self, token: str) -> float:
        n = self.df.get(token, 0)
        return math.log(1.0 + (self.n_docs - n + 0.5) / (n + 0.5))

    def coverage(self, tokens: Sequence[str]) -> float:
        """IDF-weighted share of query tokens that occur in the indexed text (0..1).

        Unknown tokens are weighted as if they were the rarest possible term; a query whose
        words the lexical index cannot see gets a coverage near 0.
        """
        if not tokens or not self.n_docs:
            return 0.0
        max_idf = math.log(1.0 + (self.n_docs - 0.5) / 1.5)
        seen = sum(self.idf(t) for t in tokens if t in self.df)
        total = sum(self.idf(t) if t in self.df else max_idf for t in tokens)
        return seen / total if total > 0 else 0.0

    def search(self, tokens: Sequence[str], k: int, mask: np.ndarray | None = None) -> list[LexicalHit]:
        known = [t for t in tokens if t in self.df]
        if self._retriever is None or not known or k <= 0:
            return []
        k = min(k, self.n_docs)
        docs, scores = self._retriever.retrieve(  # type: ignore[attr-defined]
            [known], k=k, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [LexicalHit(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    # -- persistence ---------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write atomically: a temp sibling folder renamed into place."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            if self._retriever is not None:
                self._retriever.save(str(tmp / "bm25"))  # type: ignore[attr-defined]
            (tmp / "ids.json").write_text(json.dumps(self.chunk_ids, ensure_ascii=False), encoding="utf-8")
            (tmp / "df.json").write_text(json.dumps(self.df, ensure_ascii=False), encoding="utf-8")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import bm25s

        ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        df = json.loads((folder / "df.json").read_text(encoding="utf-8"))
        retriever = bm25s.BM25.load(str(folder / "bm25")) if (folder / "bm25").exists() else None
        return cls(ids, retriever, df)
