"""Fit the evidence selector (``src/tongcheng_qa/resources/selector.json``) on development data.

    python eval/fit_selector.py features   # index each dev set, write eval/selector/features.npz
    python eval/fit_selector.py fit        # fit on that table, write selector.json + eval/selector/REPORT.md
    python eval/fit_selector.py all        # both

Development data only: the DEV parts in ``../shared/datasets`` (XQuAD zh/en, CMRC 2018,
CRUD-RAG news QA) and the team's ``eval/gold.jsonl``. The held-out TEST parts are never read.

``features``: every dev question goes through the Assistant's own rewrite and retrieval
steps; each sentence of its passages becomes a row (the selector's features) labelled 1
when it contains a gold answer span (a ``must_include`` alternative, NFKC, case and spaces
folded). The table is committed, so ``fit`` reproduces the shipped model exactly (a test
checks that) without indexing 2,000 articles.

``fit``: one model per question language: a pairwise logistic ranker (scikit-learn,
lbfgs, L2) on feature differences of answer vs other sentences of the same question, then
Platt scaling of its score into a probability; every dataset gets equal total weight. The refusal threshold is chosen on the question-level curve of the
best candidate's probability: the highest refusal rate on unanswerable questions at which
false refusals stay <= 5% (the issue's target: refusal >= 0.90 with false refusals <= 0.05;
the report shows whether both hold). Reported, so we know it transfers: leave-one-dataset-out
(fit on the others, score the held-out one) and a held-out 20% of the questions (split by
question-id hash).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tongcheng_qa.evaluation.suite import DatasetSpec

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "eval" / "selector"
FEATURES_FILE = OUT_DIR / "features.npz"
REPORT_FILE = OUT_DIR / "REPORT.md"
MODEL_FILE = ROOT / "src" / "tongcheng_qa" / "resources" / "selector.json"
DEFAULT_DATASETS = ROOT.parent / "shared" / "datasets"
#: Max false-refusal rate the threshold may cost on answerable dev questions.
MAX_FALSE_REFUSAL = 0.05
L2_C = 1.0
GATE_C = 0.3
#: What one more quoted sentence costs the reader, in answers made right: a runner-up
#: sentence is worth quoting when it turns at least 1 answer in 10 from wrong to right.
SENTENCE_COST = 0.1
MAX_PER_PART = 3
HOLDOUT_SHARE = 0.2


def dev_sets(datasets_root: Path) -> list[DatasetSpec]:
    """The gold set, then every dataset folder under ``datasets_root`` (as ``tongcheng-qa eval --datasets`` finds them)."""
    from tongcheng_qa.evaluation.suite import DatasetSpec, discover_datasets

    return [DatasetSpec("gold", ROOT / "corpus", ROOT / "eval" / "gold.jsonl"), *discover_datasets(datasets_root)]


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def holds_answer(sentence: str, must_include: Sequence[str | Sequence[str]]) -> bool:
    """The label: the sentence contains some alternative of some ``must_include`` item."""
    s = _norm(sentence)
    for item in must_include:
        alts = (item,) if isinstance(item, str) else tuple(item)
        if any(_norm(a) and _norm(a) in s for a in alts):
            return True
    return False


# --------------------------------------------------------------------------- features

def extract(sets: Sequence[DatasetSpec], index_root: Path, progress: bool = True) -> dict[str, np.ndarray]:
    from tqdm import tqdm

    from tongcheng_qa.assistant import Assistant
    from tongcheng_qa.evaluation.dataset import load_dataset
    from tongcheng_qa.knowledge_base import KnowledgeBase
    from tongcheng_qa.selection import FEATURES
    from tongcheng_qa.settings import Settings

    cols: dict[str, list] = {k: [] for k in ("x", "y", "dataset", "qid", "part", "lang", "answerable", "n_parts")}
    base = Settings()
    for ds in sets:
        settings = base.model_copy(update={
            "data_dir": index_root / ds.name, "corpus_dir": ds.corpus,
            "chroma": base.chroma.model_copy(update={"mode": "persistent"}),
            # only sentences of retrieved passages are needed here: embed them on first use
            "chunking": base.chunking.model_copy(update={"embed_sentences": False}),
        })
        kb = KnowledgeBase(settings)
        kb.ingest(ds.corpus, progress=progress)
        assistant = Assistant(settings, kb=kb)
        engine = assistant.generator("extractive")
        for q in tqdm(load_dataset(ds.questions), desc=ds.name, unit="q", disable=not progress, file=sys.stderr):
            standalone, lang, passages = assistant.retrieve(q.question, history=q.history)
            parts = engine.parts(standalone, lang)
            for i, (text, analysis) in enumerate(parts):
                for c in engine.candidates(text, analysis, passages):
                    cols["x"].append(c.features)
                    cols["y"].append(holds_answer(c.text, q.must_include))
                    cols["dataset"].append(ds.name)
                    cols["qid"].append(q.id)
                    cols["part"].append(i)
                    cols["lang"].append(q.lang)
                    cols["answerable"].append(q.answerable)
                    cols["n_parts"].append(len(parts))
    out = {k: np.asarray(v) for k, v in cols.items()}
    out["x"] = np.asarray(cols["x"], dtype=np.float32).reshape(-1, len(FEATURES))
    out["features"] = np.asarray(FEATURES)
    return out


def extract_questions(path: Path, sets: Sequence[DatasetSpec], index_root: Path) -> None:
    table = extract(sets, index_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **table)
    print(f"wrote {path}: {len(table['y'])} candidate rows, {int(table['y'].sum())} positive, "
          f"{len(set(zip(table['dataset'], table['qid'], strict=True)))} questions", file=sys.stderr)


# --------------------------------------------------------------------------- fitting

@dataclass(frozen=True)
class Fit:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))


def _weights(datasets: np.ndarray) -> np.ndarray:
    """Each dataset (or dataset-language) gets the same total weight (CRUD's 160 questions
    count as much as XQuAD's 1,081)."""
    names, counts = np.unique(datasets, return_counts=True)
    per = dict(zip(names, len(datasets) / (len(names) * counts), strict=True))
    return np.asarray([per[d] for d in datasets])


def _pairs(z: np.ndarray, y: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Differences (answer sentence - other sentence of the same question part), both ways round,
    each part's pairs weighing as much as one of its candidate rows did."""
    xs, ys, ws = [], [], []
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    for idx in np.split(order, bounds):
        pos, neg = idx[y[idx]], idx[~y[idx]]
        if not len(pos) or not len(neg):
            continue
        d = (z[pos][:, None, :] - z[neg][None, :, :]).reshape(-1, z.shape[1])
        w = np.full(len(d), weights[idx].sum() / len(d))
        xs += [d, -d]
        ys += [np.ones(len(d)), np.zeros(len(d))]
        ws += [w, w]
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)


def fit(x: np.ndarray, y: np.ndarray, datasets: np.ndarray, groups: np.ndarray | None = None) -> Fit:
    """Pairwise logistic ranking (which of two sentences of one question holds the answer),
    then a Platt scaling of its score into a probability over all candidates. Folded into
    one standardised linear model: p = sigmoid(z . coef + intercept)."""
    from sklearn.linear_model import LogisticRegression

    x = x.astype(np.float64)
    y = y.astype(bool)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    weights = _weights(datasets)
    if groups is None:
        groups = np.zeros(len(y), dtype=np.int64)
    px, py, pw = _pairs(z, y, groups, weights)
    ranker = LogisticRegression(C=L2_C, solver="lbfgs", max_iter=2000, tol=1e-8, fit_intercept=False)
    ranker.fit(px, py.astype(int), sample_weight=pw)
    w = ranker.coef_[0]
    platt = LogisticRegression(C=1e6, solver="lbfgs", max_iter=2000, tol=1e-10)
    platt.fit((z @ w)[:, None], y.astype(int), sample_weight=weights)
    return Fit(mean, scale, w * platt.coef_[0][0], float(platt.intercept_[0]))


def group_ids(table: dict[str, np.ndarray]) -> np.ndarray:
    """One integer per question part (dataset, question id, part)."""
    keys = [f"{d}\0{q}\0{p}" for d, q, p in zip(table["dataset"], table["qid"], table["part"], strict=True)]
    _, inverse = np.unique(np.asarray(keys), return_inverse=True)
    return inverse


@dataclass(frozen=True)
class Parts:
    """One row per question part: its best candidate's gate features, the ranker's
    probabilities of its candidates (best first) and their labels."""

    key: list[tuple[str, str, int]]
    dataset: np.ndarray
    answerable: np.ndarray
    gate_x: np.ndarray
    ranked: list[list[tuple[float, bool]]]


def parts_of(table: dict[str, np.ndarray], p: np.ndarray) -> Parts:
    from tongcheng_qa.selection import gate_features

    groups = group_ids(table)
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    key, dataset, answerable, gate_x, ranked = [], [], [], [], []
    for idx in np.split(order, bounds):
        idx = idx[np.argsort(-p[idx], kind="stable")]
        b = idx[0]
        second = float(p[idx[1]]) if len(idx) > 1 else 0.0
        key.append((str(table["dataset"][b]), str(table["qid"][b]), int(table["part"][b])))
        dataset.append(str(table["dataset"][b]))
        answerable.append(bool(table["answerable"][b]))
        gate_x.append(gate_features(table["x"][b].astype(np.float64), float(p[b]), second, len(idx)))
        ranked.append([(float(p[i]), bool(table["y"][i])) for i in idx])
    return Parts(key, np.asarray(dataset), np.asarray(answerable), np.asarray(gate_x), ranked)


def fit_gate(parts: Parts) -> Fit:
    """Logistic regression 'this part is answerable' on the best candidate's features; each
    dataset weighs the same, and within it unanswerable parts as much as answerable ones."""
    from sklearn.linear_model import LogisticRegression

    x = parts.gate_x
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    w = _weights(parts.dataset)
    for d in np.unique(parts.dataset):
        m = parts.dataset == d
        n_pos, n_neg = int((m & parts.answerable).sum()), int((m & ~parts.answerable).sum())
        if n_pos and n_neg:
            w[m & ~parts.answerable] *= n_pos / n_neg
    model = LogisticRegression(C=GATE_C, solver="lbfgs", max_iter=3000, tol=1e-8)
    model.fit((x - mean) / scale, parts.answerable.astype(int), sample_weight=w)
    return Fit(mean, scale, model.coef_[0], float(model.intercept_[0]))


@dataclass(frozen=True)
class QuestionView:
    """Question level: the lowest gate probability over its parts (every part must be
    answerable) and whether each part's best candidate holds a gold span."""

    key: list[tuple[str, str]]
    dataset: np.ndarray
    answerable: np.ndarray
    best_p: np.ndarray
    top_ok: np.ndarray


def question_view(parts: Parts, gate_p: np.ndarray) -> QuestionView:
    qs: dict[tuple[str, str], list[int]] = {}
    for i, (d, q, _) in enumerate(parts.key):
        qs.setdefault((d, q), []).append(i)
    keys = sorted(qs)
    return QuestionView(
        keys,
        np.asarray([k[0] for k in keys]),
        np.asarray([parts.answerable[qs[k][0]] for k in keys]),
        np.asarray([min(gate_p[i] for i in qs[k]) for k in keys]),
        np.asarray([all(parts.ranked[i][0][1] for i in qs[k]) for k in keys]),
    )


def curve(view: QuestionView, thresholds: np.ndarray) -> list[dict[str, float]]:
    """Per threshold: refusal of unanswerable, false refusal and 'right sentence answered' of answerable."""
    ans, una = view.answerable, ~view.answerable
    rows = []
    for t in thresholds:
        answered = view.best_p >= t
        rows.append({
            "threshold": float(t),
            "refusal": float((~answered[una]).mean()) if una.any() else float("nan"),
            "false_refusal": float((~answered[ans]).mean()) if ans.any() else float("nan"),
            "answered_right": float((answered & view.top_ok)[ans].mean()) if ans.any() else float("nan"),
        })
    return rows


def pick_threshold(view: QuestionView) -> float:
    """The highest threshold whose false-refusal rate on answerable questions stays within
    MAX_FALSE_REFUSAL, averaged over datasets (each dataset counts the same)."""
    grid = np.round(np.arange(0.01, 0.96, 0.01), 2)
    names = [d for d in np.unique(view.dataset) if ((view.dataset == d) & view.answerable).any()]
    best = float(grid[0])
    for t in grid:
        fr = np.mean([(view.best_p[(view.dataset == d) & view.answerable] < t).mean() for d in names])
        if fr <= MAX_FALSE_REFUSAL:
            best = float(t)
    return best


def alpha_gain(parts: Parts, gate_p: np.ndarray, threshold: float, alpha: float,
               mask: np.ndarray | None = None) -> tuple[float, float]:
    """(share of answerable parts whose quoted sentences hold the answer, mean extra sentences
    per answered part) when runners-up within ``alpha`` of the best are quoted too."""
    right = extra = answered = answerable = 0
    for i, cands in enumerate(parts.ranked):
        if mask is not None and not mask[i]:
            continue
        ok = bool(parts.answerable[i])
        answerable += ok
        if gate_p[i] < threshold:
            continue
        taken = [cands[0], *[c for c in cands[1:MAX_PER_PART] if c[0] >= alpha * cands[0][0]]]
        answered += 1
        extra += len(taken) - 1
        right += ok and any(label for _, label in taken)
    return right / max(answerable, 1), extra / max(answered, 1)


def pick_alpha(parts: Parts, gate_p: np.ndarray, threshold: float) -> float:
    """The ratio that maximises (answers right - SENTENCE_COST x extra sentences), each
    dataset weighted the same; the larger ratio (fewer sentences) on ties."""
    names = np.unique(parts.dataset)
    best, best_score = 1.0, -1.0
    for alpha in np.round(np.arange(1.0, 0.09, -0.05), 2):
        gains = [alpha_gain(parts, gate_p, threshold, float(alpha), parts.dataset == d) for d in names]
        score = float(np.mean([r - SENTENCE_COST * e for r, e in gains]))
        if score > best_score + 1e-12:
            best, best_score = float(alpha), score
    return best


@dataclass(frozen=True)
class LangModel:
    ranker: Fit
    gate: Fit
    threshold: float
    alpha: float
    parts: Parts
    gate_p: np.ndarray

    def to_json(self) -> dict:
        def lin(f: Fit) -> dict:
            return {"mean": [round(float(v), 8) for v in f.mean], "scale": [round(float(v), 8) for v in f.scale],
                    "coef": [round(float(v), 8) for v in f.coef], "intercept": round(f.intercept, 8)}
        return {"ranker": lin(self.ranker), "gate": lin(self.gate), "threshold": self.threshold, "alpha": self.alpha}


def _dataset_lang(table: dict[str, np.ndarray]) -> np.ndarray:
    return np.char.add(np.char.add(table["dataset"].astype(str), "/"), table["lang"].astype(str))


def fit_language(table: dict[str, np.ndarray], lang: str) -> LangModel:
    """The ranker, gate, threshold and runner-up ratio for questions in ``lang``.

    Chinese: the ranker is fitted on Chinese questions. English: on all questions (each
    dataset-language counting the same): the weight of term coverage can only be learned
    where the terms are checkable, and only a few English dev questions have glossary
    translations, while the region's English questions mostly do. The gate, threshold and
    ratio are fitted on the language's own questions.
    """
    own = table["lang"] == lang
    rank_rows = own if lang == "zh" else np.ones(len(own), bool)
    rt = _subset(table, rank_rows)
    ranker = fit(rt["x"], rt["y"].astype(bool), _dataset_lang(rt), group_ids(rt))
    table = _subset(table, own)
    parts = parts_of(table, ranker.proba(table["x"].astype(np.float64)))
    gate = fit_gate(parts)
    gate_p = gate.proba(parts.gate_x)
    threshold = pick_threshold(question_view(parts, gate_p))
    alpha = pick_alpha(parts, gate_p, threshold)
    return LangModel(ranker, gate, threshold, alpha, parts, gate_p)


def apply(model: LangModel, table: dict[str, np.ndarray]) -> tuple[Parts, np.ndarray]:
    """Another table's parts and gate probabilities under ``model``."""
    parts = parts_of(table, model.ranker.proba(table["x"].astype(np.float64)))
    return parts, model.gate.proba(parts.gate_x)


def _summary(view: QuestionView, threshold: float, mask: np.ndarray | None = None) -> dict[str, float | int | None]:
    m = np.ones(len(view.key), bool) if mask is None else mask
    ans, una = m & view.answerable, m & ~view.answerable
    answered = view.best_p >= threshold
    return {
        "questions": int(m.sum()),
        "top1_holds_answer": round(float(view.top_ok[ans].mean()), 4) if ans.any() else None,
        "answered_right": round(float((answered & view.top_ok)[ans].mean()), 4) if ans.any() else None,
        "false_refusal": round(float((~answered)[ans].mean()), 4) if ans.any() else None,
        "refusal": round(float((~answered)[una].mean()), 4) if una.any() else None,
        "unanswerable": int(una.sum()),
    }


def _holdout(keys: list[tuple[str, str]]) -> np.ndarray:
    return np.asarray([int(hashlib.sha1(f"{d}/{q}".encode()).hexdigest(), 16) % 100 < HOLDOUT_SHARE * 100
                       for d, q in keys])


def _subset(table: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: (v if k == "features" else v[rows]) for k, v in table.items()}


_HEAD = ["| dataset | questions | top1 | answered right | false refusal | refusal (n unanswerable) |",
         "|---|---|---|---|---|---|"]


def _row(name: str, s: dict) -> str:
    return (f"| {name} | {s['questions']} | {s['top1_holds_answer']} | {s['answered_right']} | "
            f"{s['false_refusal']} | {s['refusal']} ({s['unanswerable']}) |")


def _report_language(full: dict[str, np.ndarray], lang: str) -> tuple[LangModel, list[str]]:
    from tongcheng_qa.selection import GATE_FEATURES

    table = _subset(full, full["lang"] == lang)
    names = sorted(set(table["dataset"].tolist()))
    m = fit_language(full, lang)
    view = question_view(m.parts, m.gate_p)
    y = table["y"].astype(bool)
    head = (f"Rows: {len(y)} ({int(y.sum())} positive), questions: {len(view.key)}, datasets: {', '.join(names)}. "
            f"Gate threshold: **{m.threshold:.2f}** (highest with mean per-dataset false refusals <= "
            f"{MAX_FALSE_REFUSAL}); runner-up ratio **alpha = {m.alpha:.2f}**.")
    lines = [f"## {lang} questions", "", head, "", "### Fitted on all of it (in-sample)", "", *_HEAD]
    lines += [_row(d, _summary(view, m.threshold, None if d == "all" else view.dataset == d)) for d in [*names, "all"]]
    runners = (f"Runners-up: quote also sentences whose p >= alpha x the best one's (at most {MAX_PER_PART} a part; "
               f"each extra sentence costs {SENTENCE_COST} of an answer):")
    lines += ["", runners, "",
              "| dataset | parts answered right, best only | with runners-up | extra sentences per answer |",
              "|---|---|---|---|"]
    for d in names:
        one = alpha_gain(m.parts, m.gate_p, m.threshold, 1.01, m.parts.dataset == d)
        more = alpha_gain(m.parts, m.gate_p, m.threshold, m.alpha, m.parts.dataset == d)
        lines.append(f"| {d} | {one[0]:.3f} | {more[0]:.3f} | {more[1]:.2f} |")
    if len(names) > 1:
        lines += ["", "### Leave one dataset out (ranker, gate and threshold fitted on the others)", "",
                  "| held out | top1 | answered right | false refusal | refusal | threshold |", "|---|---|---|---|---|---|"]
        for d in names:
            other = fit_language(_subset(full, full["dataset"] != d), lang)
            v = question_view(*apply(other, _subset(table, table["dataset"] == d)))
            s = _summary(v, other.threshold)
            lines.append(f"| {d} | {s['top1_holds_answer']} | {s['answered_right']} | {s['false_refusal']} | "
                         f"{s['refusal']} | {other.threshold:.2f} |")
    hold = _holdout([(d, q) for d, q in zip(table["dataset"], table["qid"], strict=True)])
    hold_all = _holdout([(d, q) for d, q in zip(full["dataset"], full["qid"], strict=True)])
    train = fit_language(_subset(full, ~hold_all), lang)
    v = question_view(*apply(train, _subset(table, hold)))
    lines += ["", f"### Held-out {int(HOLDOUT_SHARE * 100)}% of the questions (by id hash; fitted on the other 80%)", "",
              *_HEAD]
    lines += [_row(d, _summary(v, train.threshold, None if d == "all" else v.dataset == d))
              for d in [*names, "all"] if d == "all" or (v.dataset == d).any()]
    lines += ["", "### Refusal curve (in-sample)", "",
              "| threshold | refusal of unanswerable | false refusal | answered right |", "|---|---|---|---|"]
    for r in curve(view, np.round(np.arange(0.05, 0.96, 0.05), 2)):
        lines.append(f"| {r['threshold']:.2f} | {r['refusal']:.3f} | {r['false_refusal']:.3f} | {r['answered_right']:.3f} |")
    lines += ["", "### Coefficients (standardised features): ranker, gate", "",
              "| feature | ranker | gate |", "|---|---|---|"]
    for i, name in enumerate(GATE_FEATURES):
        r = f"{m.ranker.coef[i]:+.4f}" if i < len(m.ranker.coef) else ""
        lines.append(f"| {name} | {r} | {m.gate.coef[i]:+.4f} |")
    lines += [f"| (intercept) | {m.ranker.intercept:+.4f} | {m.gate.intercept:+.4f} |", ""]
    return m, lines


def fit_and_report(table: dict[str, np.ndarray]) -> tuple[dict, str]:
    from tongcheng_qa.selection import FEATURES

    if tuple(str(f) for f in table["features"]) != FEATURES:
        raise SystemExit("the feature table was written by other code: run `python eval/fit_selector.py features`")
    names = sorted(set(table["dataset"].tolist()))
    lines = ["# Evidence selector: fit report", "",
             "Written by `python eval/fit_selector.py fit` from `eval/selector/features.npz` (development data only:",
             f"{', '.join(names)}). Rows are candidate sentences of the retrieved passages; label = the sentence",
             "holds a gold answer span. One model per question language: a ranker (which sentence) and a gate",
             "(is the part answerable at all). `top1` = the best candidate of every question part holds a gold",
             "span; `answered right` = that, and the gate lets it through; refusal = unanswerable questions the",
             "gate stops.", ""]
    models: dict[str, dict] = {}
    for lang in ("zh", "en"):
        if not (table["lang"] == lang).any():
            continue
        m, section = _report_language(table, lang)
        lines += section
        models[lang] = m.to_json()
    y = table["y"].astype(bool)
    selector = {
        "features": list(FEATURES),
        "models": models,
        "meta": {"fitted_by": "eval/fit_selector.py", "datasets": names, "rows": len(y),
                 "positives": int(y.sum()), "C": L2_C, "gate_C": GATE_C, "max_false_refusal": MAX_FALSE_REFUSAL,
                 "sentence_cost": SENTENCE_COST},
    }
    return selector, "\n".join(lines)


def load_table(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=("features", "fit", "all"))
    ap.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="folder of dev datasets (default ../shared/datasets)")
    ap.add_argument("--index-dir", type=Path, default=Path(os.environ.get("TONGCHENG_QA_DEV_INDEX", "/tmp/tongcheng-dev-index")),
                    help="where each dev set's index is kept between runs (ingest is incremental)")
    ap.add_argument("--only", default="", help="comma-separated dev set names (a quick look; the shipped model uses all)")
    ap.add_argument("--features", type=Path, default=FEATURES_FILE)
    ap.add_argument("--model-out", type=Path, default=MODEL_FILE)
    ap.add_argument("--report", type=Path, default=REPORT_FILE)
    args = ap.parse_args(argv)
    if args.step in ("features", "all"):
        if not args.datasets.is_dir():
            raise SystemExit(f"no dev datasets at {args.datasets}: pass --datasets DIR")
        sets = [s for s in dev_sets(args.datasets) if not args.only or s.name in args.only.split(",")]
        extract_questions(args.features, sets, args.index_dir)
    if args.step in ("fit", "all"):
        if not args.features.is_file():
            raise SystemExit(f"no feature table at {args.features}: run `python eval/fit_selector.py features` first")
        model, report = fit_and_report(load_table(args.features))
        args.model_out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report, encoding="utf-8")
        print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
