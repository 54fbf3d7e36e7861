"""Test/bench helper: a real ``tongcheng-qa serve`` process on 127.0.0.1 (not a test file).

    with ApiServer(data_dir, corpus_dir) as server:
        httpx.get(server.url + "/readyz")

It runs the installed CLI in a subprocess (real uvicorn, real embedding model), with the
process's environment plus ``env``; the context manager waits for ``/readyz`` and stops the
server (SIGTERM, then SIGKILL) on exit. The server's output goes to ``<data_dir>/../serve-<port>.log``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiServer:
    def __init__(
        self,
        data_dir: Path,
        corpus_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        global_args: Sequence[str] = (),
        port: int | None = None,
        ready_timeout_s: float = 240.0,
    ) -> None:
        self.data_dir, self.corpus_dir = Path(data_dir), Path(corpus_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "ANONYMIZED_TELEMETRY": "False", **(env or {})}
        self.args = list(args)  # after `serve`
        self.global_args = list(global_args)  # before it, e.g. ["-v"]
        self.ready_timeout_s = ready_timeout_s
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        cmd = [sys.executable, "-m", "tongcheng_qa.cli", *self.global_args, "--data-dir", str(self.data_dir), "serve",
               "--corpus", str(self.corpus_dir), "--port", str(self.port), *self.args]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server not ready after {self.ready_timeout_s:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the whole group: uvicorn workers included
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
