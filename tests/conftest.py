from __future__ import annotations

import os
from pathlib import Path

import pytest

from tongcheng_qa.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
GOLD = REPO / "eval" / "gold.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


ARTICLE_A = """---
title: 金牛区与什邡市共建产业园
date: 2024-01-19
source: 成都日报
url: https://example.org/a
---

金什合作产业园由金牛区、什邡市合作共建。金牛区城投集团与什邡市恒新公司按照6∶4入股合作。

目前入驻企业4家,另有3家企业正在洽谈。
"""

ARTICLE_B = """成都都市圈产业协作

成都都市圈已有1500余家企业实现跨市域产业协作。推介会上确定了9条重点产业链。
"""

ARTICLE_C = """<html><head><title>Drone base in Deyang</title>
<meta name="date" content="2023-06-01"></head>
<body><h1>Drone base in Deyang</h1>
<p>A drone maker will build an R&amp;D and manufacturing base. Revenue over ten years will reach 10 billion yuan.</p>
</body></html>
"""


def write_corpus(d: Path) -> Path:
    """The three test articles (a.md, b.txt, en/c.html) written into a new folder ``d``."""
    (d / "en").mkdir(parents=True)
    (d / "a.md").write_text(ARTICLE_A, encoding="utf-8")
    (d / "b.txt").write_text(ARTICLE_B, encoding="utf-8")
    (d / "en" / "c.html").write_text(ARTICLE_C, encoding="utf-8")
    return d


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", corpus_dir=tmp_path / "corpus", cache_dir=tmp_path / "cache")
