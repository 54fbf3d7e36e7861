"""PNG plots for report.md (matplotlib, headless Agg backend). Labels are ASCII only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ACCURACY_PNG = "accuracy_by_type_lang.png"
LATENCY_PNG = "latency_ms.png"
HIT_AT_K_PNG = "hit_at_k.png"
TYPES = ("factoid", "multi_hop", "unanswerable", "followup")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def type_accuracy(summary: Mapping[str, Any], qtype: str) -> float | None:
    """Answer accuracy, or refusal accuracy for unanswerable questions."""
    return summary.get("refusal_accuracy" if qtype == "unanswerable" else "answer_accuracy")


def accuracy_table(report: Mapping[str, Any]) -> dict[str, list[float | None]]:
    """{group ('all', 'zh', 'en'): accuracy per question type}, from report.json's numbers."""
    by_lang = report.get("by_lang", {})
    by_type = report.get("by_type", {})
    out: dict[str, list[float | None]] = {"all": [type_accuracy(by_type[t], t) if t in by_type else None for t in TYPES]}
    for lang in ("zh", "en"):
        if lang in by_lang:
            out[lang] = [type_accuracy(by_lang[lang]["by_type"][t], t) if t in by_lang[lang].get("by_type", {}) else None
                         for t in TYPES]
    return out


def plot_accuracy(table: Mapping[str, Sequence[float | None]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / max(len(table), 1)
    for i, (group, values) in enumerate(table.items()):
        xs = [x + (i - (len(table) - 1) / 2) * width for x in range(len(TYPES))]
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, heights, width, label=group)
        for bar, v in zip(bars, values, strict=True):
            ax.annotate("n/a" if v is None else f"{v:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(TYPES)), [t if t != "unanswerable" else "unanswerable\n(refusal acc.)" for t in TYPES])
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy by question type and language")
    ax.legend(loc="upper center", ncol=len(table), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(series: Mapping[str, Sequence[float]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    positive = [v for values in series.values() for v in values if v > 0]
    if positive:
        lo, hi = min(positive), max(positive)
        bins = [lo * (hi / lo) ** (i / 30) for i in range(31)] if hi > lo else 10
        for label, values in series.items():
            kept = [v for v in values if v > 0]
            if kept:
                ax.hist(kept, bins=bins, alpha=0.6, label=f"{label} (n={len(kept)})")
        ax.set_xscale("log")
    ax.set_xlabel("latency per question, ms (Answer.timings_ms.total; log scale)")
    ax.set_ylabel("questions")
    ax.set_title("Latency distribution")
    if any(series.values()):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_hit_at_k(curves: Mapping[str, Sequence[float | None]], path: Path) -> None:
    """``curves``: label -> hit@k for k = 1..len."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for label, values in curves.items():
        points = [(k, v) for k, v in enumerate(values, 1) if v is not None]
        if points:
            style = "--" if label.startswith("article") else "-"
            ax.plot([k for k, _ in points], [v for _, v in points], style, marker="o", markersize=3, label=label)
    ax.set_xlabel("k")
    ax.set_ylabel("hit@k")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(range(1, max((len(v) for v in curves.values()), default=1) + 1))
    ax.set_title("Retrieval hit@k (article: a gold source; passage: an evidence string)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
