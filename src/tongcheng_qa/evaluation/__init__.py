"""The evaluation harness behind ``tongcheng-qa eval`` (DESIGN.md, "Evaluation dataset").

    dataset.py    load + validate the JSONL questions (DatasetError lists every bad line)
    metrics.py    pure per-question metrics and their aggregation into the report keys
    overrides.py  KEY=VALUE settings overrides (``--config retrieval.mode=dense``)
    runner.py     index in an isolated data dir, ask through one Assistant, ablations
    baseline.py   the plain LangChain recipe (splitter + Chroma top-4) for comparison
    report.py     results.jsonl, report.json, report.md;  plots.py  its PNGs
    suite.py      every dataset folder under a root (+ the gold set): one report each, SUMMARY.md
"""

from __future__ import annotations

from .dataset import DatasetError, EvalQuestion, load_dataset
from .overrides import apply_overrides
from .runner import EvalResult, run_eval

__all__ = ["DatasetError", "EvalQuestion", "EvalResult", "apply_overrides", "load_dataset", "run_eval"]
