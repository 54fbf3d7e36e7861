"""The shipped evidence selector is exactly what its script fits from the committed feature table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tongcheng_qa.selection import FEATURES, GATE_FEATURES, Selector, default_selector

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "eval" / "fit_selector.py"


def _script():
    spec = importlib.util.spec_from_file_location("fit_selector", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_refitting_the_committed_table_reproduces_the_shipped_model(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    fit = _script()
    model_out, report = tmp_path / "selector.json", tmp_path / "REPORT.md"
    assert fit.main(["fit", "--model-out", str(model_out), "--report", str(report)]) == 0
    refit = json.loads(model_out.read_text(encoding="utf-8"))
    shipped = json.loads((REPO / "src" / "tongcheng_qa" / "resources" / "selector.json").read_text(encoding="utf-8"))
    assert refit["features"] == shipped["features"] == list(FEATURES)
    assert set(refit["models"]) == set(shipped["models"]) == {"zh", "en"}
    for lang, model in refit["models"].items():
        ship = shipped["models"][lang]
        assert (model["threshold"], model["alpha"]) == (ship["threshold"], ship["alpha"])
        for part in ("ranker", "gate"):
            for key in ("mean", "scale", "coef"):
                np.testing.assert_allclose(model[part][key], ship[part][key], rtol=1e-4, atol=1e-5)
            assert model[part]["intercept"] == pytest.approx(ship[part]["intercept"], abs=1e-4)
    assert report.read_text(encoding="utf-8") == (REPO / "eval" / "selector" / "REPORT.md").read_text(encoding="utf-8")


def test_the_shipped_model_was_fitted_on_every_dev_set_and_never_on_test_parts() -> None:
    meta = default_selector().meta
    assert meta.get("fitted_by") == "eval/fit_selector.py"
    assert set(meta["datasets"]) == {"gold", "xquad_zh_en", "cmrc2018", "crud_news"}
    assert not any("test" in name.lower() for name in meta["datasets"])


def test_label_is_a_gold_span_inside_the_sentence_after_folding() -> None:
    fit = _script()
    assert fit.holds_answer("目前入驻企业４家,另有3家", [["4家", "four"]])
    assert fit.holds_answer("Revenue will reach 10 Billion yuan", ["10billion"])
    assert not fit.holds_answer("目前入驻企业4家", ["5家"])
    assert not fit.holds_answer("任何句子", [])


def test_a_model_fitted_on_other_features_is_refused_with_the_fix() -> None:
    data = default_selector().to_json()
    data["features"] = data["features"][:-1]
    with pytest.raises(ValueError, match="fit_selector.py"):
        Selector.from_json(data)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_each_language_model_ranks_by_its_coefficients(lang: str) -> None:
    ranker = default_selector().for_lang(lang).ranker
    x = np.tile(np.asarray(ranker.mean), (2, 1))
    i = int(np.argmax(ranker.coef))  # the feature with the strongest positive weight
    x[1, i] += ranker.scale[i]
    p = ranker.probabilities(x)
    assert p[1] > p[0]
    assert 0.0 < p[0] < 1.0
    assert len(default_selector().for_lang(lang).gate.coef) == len(GATE_FEATURES)
