"""Scale-out for real: `tongcheng-qa serve --workers 2` over a real `chroma run` server.

The workers are separate processes (real uvicorn, real embedding model). They share the
vector store (the Chroma server) and the data folder (docstore, sessions): an article added
through one worker is answered by the other, and a conversation started on one continues on
the other. /readyz names the serving process (``instance``), and a keep-alive connection stays
with one worker, so each answer below is known to come from a given worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from chroma_server import ChromaServer, free_port
from live_server import ApiServer

pytestmark = [pytest.mark.slow, pytest.mark.chroma_server]

ADMIN = {"Authorization": "Bearer scale-out-token"}
ARTICLE = {"article_id": "news/deyang-drones.md", "title": "德阳无人机基地", "date": "2024-03-01",
           "source": "德阳日报", "body": "德阳无人机产业基地年营收将达120亿元。基地由德阳市与无人机企业共建。"}
NEW_QUESTION = "德阳无人机产业基地年营收将达多少?"
NEW_FACT = "120亿元"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, corpus_dir_module: Path) -> Iterator[ApiServer]:
    base = tmp_path_factory.mktemp("scale-out")
    chroma = ChromaServer(base / "chroma-server", free_port())
    chroma.start()
    env = {"TONGCHENG_QA_CHROMA__MODE": "http", "TONGCHENG_QA_CHROMA__HOST": "127.0.0.1",
           "TONGCHENG_QA_CHROMA__PORT": str(chroma.port), "TONGCHENG_QA_API__ADMIN_TOKEN": ADMIN["Authorization"][7:],
           "TONGCHENG_QA_API__RATE_LIMIT_PER_MINUTE": "0"}
    try:
        with ApiServer(base / "data", corpus_dir_module, env=env, args=["--workers", "2"]) as server:
            yield server
    finally:
        chroma.stop()


@pytest.fixture(scope="module")
def corpus_dir_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import write_corpus

    return write_corpus(tmp_path_factory.mktemp("scale-out-corpus") / "corpus")


def _on_a_fresh_connection(url: str, fn: Any) -> tuple[str, Any]:
    """(the worker's instance id, fn(client)) over one new keep-alive connection: one worker."""
    with httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        return ready.json()["instance"], fn(client)


def _connection_to(url: str, avoid: str | None = None, timeout_s: float = 60.0) -> tuple[str, httpx.Client]:
    """An open connection to a worker (one not ``avoid``): new connections until one lands there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        client = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1))
        instance = client.get("/readyz").json()["instance"]
        if instance != avoid:
            return instance, client
        client.close()
    raise AssertionError(f"no connection reached a worker other than {avoid} in {timeout_s:.0f} s")


def _ask_many(url: str, question: str, n: int = 20) -> list[tuple[str, dict[str, Any]]]:
    """``n`` questions, each on its own new connection, 4 at a time (so both workers get some)."""
    def one(_: int) -> tuple[str, Any]:
        return _on_a_fresh_connection(url, lambda c: c.post("/v1/ask", json={"question": question}).json())

    deadline = time.monotonic() + 120
    results: list[tuple[str, dict[str, Any]]] = []
    with ThreadPoolExecutor(4) as pool:
        while time.monotonic() < deadline:
            results += list(pool.map(one, range(n)))
            if len({inst for inst, _ in results}) >= 2:  # the second worker may still be loading the model
                return results
    raise AssertionError(f"only one worker answered {len(results)} connections: {results[:1]}")


def test_workers_share_the_chroma_server_and_the_data_folder(cluster: ApiServer) -> None:
    url = cluster.url
    before = _ask_many(url, "金什合作产业园入驻企业有几家?")
    assert all("4家" in out["answer"] and not out["refused"] for _, out in before)
    instances = {inst for inst, _ in before}
    assert len(instances) == 2  # two processes

    # added through one worker ...
    _, added = _on_a_fresh_connection(url, lambda c: c.post("/v1/articles", json=ARTICLE, headers=ADMIN))
    assert added.status_code == 201, added.text
    # ... answered by both, on fresh connections
    after = _ask_many(url, NEW_QUESTION)
    for inst, out in after:
        assert NEW_FACT in out["answer"] and out["citations"][0]["article_id"] == ARTICLE["article_id"], (inst, out)
    assert {inst for inst, _ in after} == instances
    # the counts agree everywhere
    counts = {_on_a_fresh_connection(url, lambda c: c.get("/readyz").json()["articles"])[1] for _ in range(6)}
    assert counts == {4}

    # removed through one worker: gone for both
    _, gone = _on_a_fresh_connection(url, lambda c: c.delete(f"/v1/articles/{ARTICLE['article_id']}", headers=ADMIN))
    assert gone.status_code == 200, gone.text
    for _ in range(2):
        for avoid in instances:
            inst, client = _connection_to(url, avoid=avoid)
            with closing(client):
                assert client.get(f"/v1/articles/{ARTICLE['article_id']}").status_code == 404
                out = client.post("/v1/ask", json={"question": NEW_QUESTION}).json()
                assert NEW_FACT not in out["answer"], (inst, out)
                assert ARTICLE["article_id"] not in {c["article_id"] for c in out["citations"]}


def test_a_session_started_on_one_worker_continues_on_the_other(cluster: ApiServer) -> None:
    url = cluster.url
    first_worker, client = _connection_to(url)
    with closing(client):
        sid = client.post("/v1/sessions").json()["session_id"]
        first = client.post("/v1/ask", json={"question": "金什合作产业园由谁共建?", "session_id": sid}).json()
        assert "金牛区" in first["answer"]
    other_worker, client = _connection_to(url, avoid=first_worker)
    assert other_worker != first_worker
    with closing(client):
        follow = client.post("/v1/ask", json={"question": "它入驻了几家企业?", "session_id": sid}).json()
        assert "金什合作产业园" in follow["standalone_question"], follow  # the history came from the shared store
        assert "4家" in follow["answer"] and follow["session_id"] == sid
    _, turns = _on_a_fresh_connection(url, lambda c: c.get(f"/v1/sessions/{sid}").json()["turns"])
    assert [t["content"] for t in turns[::2]] == ["金什合作产业园由谁共建?", "它入驻了几家企业?"]
    assert turns[1]["answer"]["citations"] == first["citations"]


def test_several_workers_without_a_chroma_server_are_refused(tmp_path: Path, corpus_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGCHENG_QA_CHROMA__")}
    proc = subprocess.run(
        [sys.executable, "-m", "tongcheng_qa.cli", "--data-dir", str(tmp_path / "data"), "serve", "--corpus",
         str(corpus_dir), "--port", str(free_port()), "--workers", "2"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "TONGCHENG_QA_CHROMA__MODE=http" in out and "--workers 2" in out, out
    assert "Traceback" not in out
    assert not (tmp_path / "data" / "chroma").exists()  # refused before touching anything
