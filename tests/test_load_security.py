"""A bounded load smoke and the server's security defaults, against a real `serve` process.

The full load run is `bench/bench_api.py` (numbers in bench/RESULTS.md); this checks, with a
fixed request count and a time limit, that concurrency causes no errors and no memory growth.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS
from live_server import ApiServer

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "adm-7f3c1d9e-not-in-logs"
LLM_KEY = "sk-llm-5b2e8a-not-in-logs"
QUESTIONS = ["金什合作产业园入驻了几家企业?", "Who co-built the Jinshi cooperative industrial park?",
             "金什合作产业园的园区面积是多少平方公里?", "成都都市圈有多少家企业实现跨市域产业协作?"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("load")
    shutil.copytree(CORPUS, root / "corpus")
    env = {"TONGCHENG_QA_API__RATE_LIMIT_PER_MINUTE": "0", "TONGCHENG_QA_API__ADMIN_TOKEN": ADMIN_TOKEN,
           "TONGCHENG_QA_LLM__API_KEY": LLM_KEY}
    with ApiServer(root / "data", root / "corpus", env=env, global_args=["-v"]) as srv:
        yield srv


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _burst(url: str, clients: int, total: int, time_limit: float) -> tuple[int, dict[str, int]]:
    ok, errors, lock = 0, {}, threading.Lock()
    todo = iter(range(total))
    deadline = time.monotonic() + time_limit

    def worker() -> None:
        nonlocal ok
        with httpx.Client(base_url=url, timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                try:
                    res = client.post("/v1/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]})
                    key = None if res.status_code == 200 and "answer" in res.json() else f"HTTP {res.status_code}"
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                with lock:
                    if key is None:
                        ok += 1
                    else:
                        errors[key] = errors.get(key, 0) + 1

    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    return ok, errors


@pytest.mark.parametrize("clients", [8, 32])
def test_concurrent_clients_get_answers_without_errors_or_memory_growth(server: ApiServer, clients: int) -> None:
    assert server.proc is not None
    _burst(server.url, clients, 2 * clients, 60)  # warm-up: threads, caches, allocator pools
    before = _rss_mb(server.proc.pid)
    rounds = [_burst(server.url, clients, 4 * clients, 90) for _ in range(2)]
    after = _rss_mb(server.proc.pid)
    for ok, errors in rounds:
        assert errors == {} and ok == 4 * clients  # every request answered within the time limit
    assert after - before < 40, f"RSS grew {after - before:.1f} MB over {8 * clients} requests"


def test_server_binds_loopback_only_by_default(server: ApiServer) -> None:
    port_hex = f"{server.port:04X}"
    listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    local = [row[1] for row in listening if row[1].endswith(":" + port_hex) and row[3] == "0A"]  # 0A = LISTEN
    assert local == ["0100007F:" + port_hex]  # 127.0.0.1 only
    assert not any(row[1].endswith(":" + port_hex) and row[3] == "0A"
                   for row in (ln.split() for ln in Path("/proc/net/tcp6").read_text().splitlines()[1:]))


def test_secrets_never_reach_the_log_or_responses(server: ApiServer) -> None:
    url = server.url
    wrong = httpx.post(url + "/v1/articles", json={"title": "t", "body": "b"},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"})
    assert wrong.status_code == 401
    added = httpx.post(url + "/v1/articles", json={"title": "测试", "body": "测试正文。", "article_id": "t/x.md"},
                       headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
    assert added.status_code == 201
    httpx.delete(url + "/v1/articles/t/x.md", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60)
    ready = httpx.get(url + "/readyz")
    spec = httpx.get(url + "/openapi.json")
    for text in (wrong.text, added.text, ready.text, spec.text, server.log()):
        assert ADMIN_TOKEN not in text and LLM_KEY not in text
