"""Faults, for real where possible: an LLM server that is slow, down or answers garbage; a Chroma
server that goes away and comes back; a sessions database that is locked or full.

The service must keep answering what it can (extractive answers when the LLM fails), say
clearly what is wrong when it can't (503 JSON naming the broken part and the fix), and
never lose or half-write stored conversation turns.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from chroma_server import ChromaServer, free_port
from fakes import HashEmbedder
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sse_events import parse_sse as _events

from tongcheng_qa.api import create_app
from tongcheng_qa.conversation import SQLiteSessionStore
from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.settings import ChromaSettings, Settings

QUESTION = "金什合作产业园入驻企业有几家?"
FACT = "4家"
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "')


def _json_error(res: Any, status: int) -> str:
    assert res.status_code == status, (res.status_code, res.text[:500])
    assert res.headers["content-type"].startswith("application/json")
    assert not any(m in res.text for m in TRACEBACK_MARKERS), res.text
    error = res.json()["error"]
    assert isinstance(error, str) and error.strip()
    return error


def _with_services(client: TestClient, **changes: Any) -> None:
    """Swap services of a started app (e.g. a session store with a short lock timeout)."""
    app: FastAPI = client.app  # type: ignore[assignment]
    app.state.services = dataclasses.replace(app.state.services, **changes)


# -- a misbehaving OpenAI-compatible LLM server -------------------------------------------------------

LLM_TIMEOUT_S = 2.0
SLOW_S = LLM_TIMEOUT_S + 2.0
GOOD_ANSWER = f"目前入驻企业{FACT}[1]。"


def _completion(content: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeLLM(ThreadingHTTPServer):
    """Speaks just enough of the OpenAI API (``GET /v1/models``, ``POST /v1/chat/completions``,
    plain or streamed) for ChatOpenAI, misbehaving as ``mode`` says."""

    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _FakeLLMHandler)
        self.mode = mode
        self.requests: list[tuple[str, str]] = []
        self.released = threading.Event()  # ends the sleeps of "slow" handlers at shutdown

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _FakeLLMHandler(BaseHTTPRequestHandler):
    server: FakeLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path))
        if self.server.mode == "error_500":
            self._send(500, b'{"error": {"message": "model crashed"}}')
        elif self.server.mode == "not_json":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>")
        else:
            self._send(200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        stream = bool(body.get("stream"))
        self.server.requests.append(("POST", self.path))
        mode = self.server.mode
        try:
            if mode == "slow":
                self.server.released.wait(SLOW_S)
                self._answer(stream, GOOD_ANSWER)
            elif mode == "not_json":  # 200, says JSON, is an HTML error page (a proxy in front of a dead model)
                if stream:
                    self._send(200, b"data: <html>502 Bad Gateway</html>\n\n", "text/event-stream")
                else:
                    self._send(200, b"<html><body>502 Bad Gateway</body></html>")
            elif mode == "no_choices":
                if stream:
                    self._send(200, b'data: {"id": "x", "object": "chat.completion.chunk"}\n\ndata: [DONE]\n\n',
                               "text/event-stream")
                else:
                    self._send(200, b'{"id": "x", "object": "chat.completion", "created": 0, "model": "fake"}')
            elif mode == "error_500":
                self._send(500, b'{"error": {"message": "CUDA out of memory", "type": "server_error"}}')
            elif mode == "empty":
                self._answer(stream, "")
            elif mode == "stalls" and stream:  # the first words, then nothing: a model that hangs mid-answer
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(_chunk("目前入驻"))
                self.wfile.flush()
                self.server.released.wait(SLOW_S)
            elif mode == "stalls":
                self.server.released.wait(SLOW_S)
                self._answer(stream, GOOD_ANSWER)
            elif mode == "off_topic":  # a fluent answer that the sources don't support
                self._answer(stream, "The park has 12 companies and a golf course.")
            else:
                raise AssertionError(mode)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): expected for "slow"

    def _answer(self, stream: bool, content: str) -> None:
        if not stream:
            self._send(200, json.dumps(_completion(content)).encode())
            return
        chunks = [_chunk(content[i:i + 4]) for i in range(0, len(content), 4)] + [_chunk(None, "stop")]
        self._send(200, b"".join(chunks) + b"data: [DONE]\n\n", "text/event-stream")


@contextmanager
def fake_llm(mode: str) -> Iterator[FakeLLM]:
    server = FakeLLM(mode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def llm_kb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, KnowledgeBase]:
    from conftest import write_corpus

    base = tmp_path_factory.mktemp("llm-faults")
    corpus = write_corpus(base / "corpus")
    s = Settings(data_dir=base / "data", corpus_dir=corpus, cache_dir=base / "cache")
    kb = KnowledgeBase(s, embedder=HashEmbedder())
    kb.ingest(corpus, progress=False)
    return s, kb


def _llm_client(s: Settings, kb: KnowledgeBase, base_url: str) -> TestClient:
    s = s.model_copy(update={
        "llm": s.llm.model_copy(update={"base_url": base_url, "timeout_s": LLM_TIMEOUT_S, "rewrite_with_llm": False}),
        "answer": s.answer.model_copy(update={"engine": "openai"}),
        "api": s.api.model_copy(update={"rate_limit_per_minute": 0}),
    })
    return TestClient(create_app(s, kb=kb))


def _check_extractive(out: dict[str, Any]) -> None:
    assert out["engine"] == "extractive", out
    assert not out["refused"] and FACT in out["answer"] and out["citations"], out
    assert out["citations"][0]["article_id"] == "a.md"


@pytest.mark.parametrize("mode", ["down", "slow", "not_json", "no_choices", "error_500", "empty", "off_topic"])
def test_a_failing_llm_falls_back_to_extractive_answers(llm_kb: tuple[Settings, KnowledgeBase], mode: str) -> None:
    s, kb = llm_kb
    with fake_llm("slow" if mode == "down" else mode) as llm:
        base_url = f"http://127.0.0.1:{free_port()}/v1" if mode == "down" else llm.base_url
        with _llm_client(s, kb, base_url) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["default_engine"] == "openai"
            status = ready.json()["llm"]
            assert status["configured"] is True and status["base_url"] == base_url
            if mode in ("down", "error_500", "not_json"):
                assert status["reachable"] is False and base_url in status["error"]
                assert "extractive" in status["error"]  # says what happens meanwhile
            else:
                assert status["reachable"] is True

            t0 = time.monotonic()
            res = client.post("/v1/ask", json={"question": QUESTION})
            assert res.status_code == 200, res.text
            _check_extractive(res.json())
            assert time.monotonic() - t0 < LLM_TIMEOUT_S + 1.5  # the deadline holds: no waiting for the slow model

            t0 = time.monotonic()
            stream = client.post("/v1/ask/stream", json={"question": QUESTION})
            assert stream.status_code == 200
            events = _events(stream.text)
            assert [n for n, _ in events][-2:] == ["final", "done"], events
            final = events[-2][1]
            _check_extractive(final)
            streamed = "".join(d["text"] for n, d in events if n == "token")
            if mode == "off_topic":  # the model's text streamed as written; the verified final answer replaces it
                assert "golf" in streamed and "golf" not in final["answer"]
            else:  # the model failed before its first token: the extractive engine's text streamed
                assert FACT in streamed  # (its [n] markers are renumbered in the final answer)
            assert time.monotonic() - t0 < LLM_TIMEOUT_S + 1.5

            chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]})
            assert chat.status_code == 200 and FACT in chat.json()["choices"][0]["message"]["content"]
            assert chat.json()["refused"] is False
        if mode != "down":  # the model was really asked: plainly and streamed
            posts = [p for m, p in llm.requests if m == "POST"]
            assert posts and all(p == "/v1/chat/completions" for p in posts) and len(posts) >= 3


def _stream_events(client: TestClient, path: str) -> tuple[float, list[tuple[str, Any]], str]:
    body: dict[str, Any] = {"question": QUESTION}
    if path.endswith("completions"):
        body = {"stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    t0 = time.monotonic()
    res = client.post(path, json=body)
    assert res.status_code == 200  # the status line went out with the first token
    return time.monotonic() - t0, _events(res.text), res.text


@pytest.mark.parametrize("path", ["/v1/ask/stream", "/v1/chat/completions"])
def test_an_llm_that_stalls_mid_stream_ends_the_stream_in_time(
    llm_kb: tuple[Settings, KnowledgeBase], path: str
) -> None:
    s, kb = llm_kb
    with fake_llm("stalls") as llm, _llm_client(s, kb, llm.base_url) as client:
        elapsed, events, text = _stream_events(client, path)
    assert elapsed < 2 * LLM_TIMEOUT_S + 1.5  # the client's read timeout ends the wait
    assert not any(m in text for m in TRACEBACK_MARKERS)
    payloads = [d for _, d in events if isinstance(d, dict)]
    answered = any(n == "final" for n, _ in events) or any(
        d.get("choices") and d["choices"][0]["finish_reason"] == "stop" for d in payloads)
    errors = [d["error"] for d in payloads if "error" in d]
    assert answered and not errors, events[-3:]  # the evidence answers instead (next test)


def test_an_llm_that_stalls_mid_stream_still_gets_an_extractive_final_answer(
    llm_kb: tuple[Settings, KnowledgeBase]
) -> None:
    s, kb = llm_kb
    with fake_llm("stalls") as llm, _llm_client(s, kb, llm.base_url) as client:
        _, events, _ = _stream_events(client, "/v1/ask/stream")
    assert [n for n, _ in events][-2:] == ["final", "done"], events[-2:]
    _check_extractive(events[-2][1])


def test_a_working_fake_llm_answers_as_llm(llm_kb: tuple[Settings, KnowledgeBase]) -> None:
    """The control: the same fake server, behaving, makes LLM answers (so the fallbacks above are real)."""
    s, kb = llm_kb
    with fake_llm("slow") as llm, _llm_client(s, kb, llm.base_url) as client:
        llm.released.set()  # not slow
        out = client.post("/v1/ask", json={"question": QUESTION}).json()
        assert out["engine"] == "llm" and not out["refused"] and FACT in out["answer"]
        events = _events(client.post("/v1/ask/stream", json={"question": QUESTION}).text)
        assert events[-2][1]["engine"] == "llm" and FACT in events[-2][1]["answer"]


# -- a Chroma server that goes away and comes back ------------------------------------------------------

@pytest.mark.slow
@pytest.mark.chroma_server
def test_chroma_server_down_is_a_503_and_the_app_recovers_when_it_returns(tmp_path: Path, corpus_dir: Path) -> None:
    server = ChromaServer(tmp_path / "chroma-server", free_port())
    server.start()
    try:
        s = Settings(data_dir=tmp_path / "data", corpus_dir=corpus_dir, cache_dir=tmp_path / "cache",
                     chroma=ChromaSettings(mode="http", host="127.0.0.1", port=server.port))
        s = s.model_copy(update={"api": s.api.model_copy(update={"rate_limit_per_minute": 0,
                                                                  "admin_token": _secret("t")})})
        kb = KnowledgeBase(s, embedder=HashEmbedder())
        kb.ingest(corpus_dir, progress=False)
        with TestClient(create_app(s, kb=kb)) as client:
            assert client.get("/readyz").status_code == 200
            _check_ok(client.post("/v1/ask", json={"question": QUESTION}))

            server.stop()
            for res in (client.post("/v1/ask", json={"question": QUESTION}),
                        # streams too: retrieval runs before the status line, so not a 200 with an error event
                        client.post("/v1/ask/stream", json={"question": QUESTION}),
                        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}),
                        client.post("/v1/chat/completions", json={"stream": True,
                                                                  "messages": [{"role": "user", "content": QUESTION}]}),
                        client.get("/v1/search", params={"q": QUESTION}),
                        client.get("/readyz")):
                error = _json_error(res, 503)
                assert f"Chroma server at http://127.0.0.1:{server.port}" in error and "unreachable" in error
                assert "chroma run" in error  # how to fix it
            # an article added while the vector store is down: refused, and not left in the corpus folder
            doc = {"article_id": "news/new.md", "title": "新文章", "body": "德阳无人机产业基地年营收将达120亿元。"}
            _json_error(client.post("/v1/articles", json=doc, headers={"Authorization": "Bearer t"}), 503)
            assert not (corpus_dir / "news" / "new.md").exists()
            # what doesn't need the vector store still works
            assert client.get("/healthz").status_code == 200
            assert client.get("/v1/articles/a.md").status_code == 200

            server.start()  # same port, same path: the same collection
            _check_ok(client.post("/v1/ask", json={"question": QUESTION}))  # the same app, not restarted
            assert client.get("/readyz").status_code == 200
            events = _events(client.post("/v1/ask/stream", json={"question": QUESTION}).text)
            assert events[-2][0] == "final" and FACT in events[-2][1]["answer"]
            assert client.post("/v1/articles", json=doc, headers={"Authorization": "Bearer t"}).status_code == 201
    finally:
        server.stop()


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


def _check_ok(res: Any) -> None:
    assert res.status_code == 200, res.text
    out = res.json()
    assert not out["refused"] and FACT in out["answer"], out


# -- the sessions database: locked, full ---------------------------------------------------------------------

@pytest.fixture
def session_client(settings: Settings, corpus_dir: Path) -> Iterator[TestClient]:
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest(corpus_dir, progress=False)
    s = settings.model_copy(update={"api": settings.api.model_copy(update={"rate_limit_per_minute": 0})})
    with TestClient(create_app(s, kb=kb)) as client:
        yield client


def _turns(client: TestClient, sid: str) -> list[tuple[str, str]]:
    res = client.get(f"/v1/sessions/{sid}")
    assert res.status_code == 200, res.text
    return [(t["role"], t["content"]) for t in res.json()["turns"]]


def test_a_locked_sessions_database_is_a_503_and_no_turn_is_half_written(
    session_client: TestClient, settings: Settings
) -> None:
    client = session_client
    path = settings.sessions_path
    _with_services(client, sessions=SQLiteSessionStore(path, timeout_s=0.2))
    sid = client.post("/v1/sessions").json()["session_id"]
    first = client.post("/v1/ask", json={"question": "金什合作产业园由谁共建?", "session_id": sid})
    assert first.status_code == 200
    before = _turns(client, sid)
    assert len(before) == 2

    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        t0 = time.monotonic()
        error = _json_error(client.post("/v1/ask", json={"question": "它入驻了几家企业?", "session_id": sid}), 503)
        assert time.monotonic() - t0 < 5  # the store's 0.2 s lock timeout, not the default 10 s
        assert str(path) in error and "locked" in error and "retry" in error
        error = _json_error(client.post("/v1/sessions"), 503)
        assert str(path) in error and "locked" in error
        # a stream has sent its status line before the turn is stored: an error event, no final answer
        stream = client.post("/v1/ask/stream", json={"question": "它入驻了几家企业?", "session_id": sid})
        names = [n for n, _ in _events(stream.text)]
        assert names[-1] == "error" and "final" not in names
        assert str(path) in _events(stream.text)[-1][1]["error"]
        # an answer without a session doesn't need the store
        _check_ok(client.post("/v1/ask", json={"question": QUESTION}))
        # WAL: reading the session still works while a writer holds the lock
        assert _turns(client, sid) == before
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert _turns(client, sid) == before  # the refused turns left nothing behind, not even the question
    again = client.post("/v1/ask", json={"question": "它入驻了几家企业?", "session_id": sid})
    assert again.status_code == 200 and FACT in again.json()["answer"]  # the history was intact: rewrite worked
    after = _turns(client, sid)
    assert after[:2] == before and [r for r, _ in after] == ["user", "assistant", "user", "assistant"]


class _FillableStore(SQLiteSessionStore):
    """A store whose disk can be made "full": each connection may not grow the file (max_page_count)."""

    full = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with super()._connect() as conn:
            if self.full:
                (pages,) = conn.execute("PRAGMA page_count").fetchone()
                conn.execute(f"PRAGMA max_page_count = {pages}")
            yield conn


def test_a_full_disk_under_the_sessions_database_is_a_503_and_earlier_turns_survive(
    session_client: TestClient, settings: Settings
) -> None:
    client = session_client
    path = settings.sessions_path
    store = _FillableStore(path, timeout_s=0.2)
    _with_services(client, sessions=store)
    sid = client.post("/v1/sessions").json()["session_id"]
    assert client.post("/v1/ask", json={"question": "金什合作产业园由谁共建?", "session_id": sid}).status_code == 200
    before = _turns(client, sid)

    store.full = True
    long_question = "它入驻了几家企业?" + "请详细说明。" * 300  # > one page: the file must grow
    assert len(long_question) <= 2000
    error = _json_error(client.post("/v1/ask", json={"question": long_question, "session_id": sid}), 503)
    assert str(path) in error and "disk is full" in error and "Free space" in error
    assert _turns(client, sid) == before  # readable, and nothing half-written

    store.full = False  # space freed
    again = client.post("/v1/ask", json={"question": long_question, "session_id": sid})
    assert again.status_code == 200
    assert _turns(client, sid)[:2] == before and len(_turns(client, sid)) == 4



# -- the server killed in the middle of an ingest through the API ---------------------------------------

def _big_article(n: int = 400) -> dict[str, str]:
    paragraphs = [f"第{i}号项目:成都都市圈第{i}号产业协作项目已经在德阳落地投产,预计年产值将达{i + 1000}亿元,"
                  f"带动就业{i * 10 + 7}人。该项目由成都和德阳两地企业共同投资建设,是都市圈产业建圈强链的重点项目之一,"
                  f"第{i}号项目的二期工程计划于明年开工,届时将新增生产线{i % 9 + 2}条。" for i in range(n)]
    return {"article_id": "news/big.md", "title": "成都都市圈产业协作项目汇编", "date": "2024-05-01",
            "body": "\n\n".join(paragraphs)}


@pytest.mark.slow
def test_sigkill_during_an_api_ingest_keeps_the_index_and_the_next_ingest_completes(
    tmp_path: Path, corpus_dir: Path
) -> None:
    import os
    import signal

    import httpx
    from live_server import ApiServer

    data = tmp_path / "data"
    env = {"TONGCHENG_QA_API__ADMIN_TOKEN": "t", "TONGCHENG_QA_API__RATE_LIMIT_PER_MINUTE": "0"}
    admin = {"Authorization": "Bearer t"}
    big = _big_article()  # ~400 chunks: seconds of embedding with the real model
    written = corpus_dir / "news" / "big.md"  # written first, then the upsert embeds it

    server = ApiServer(data, corpus_dir, env=env).start()
    try:
        _check_ok(httpx.post(server.url + "/v1/ask", json={"question": QUESTION}, timeout=60))
        outcome: list[object] = []  # what the POST got: nothing until the kill, then a connection error

        def post() -> None:
            try:
                outcome.append(httpx.post(server.url + "/v1/articles", json=big, headers=admin, timeout=120))
            except httpx.HTTPError as exc:  # the server dies under the request
                outcome.append(exc)

        poster = threading.Thread(target=post)
        poster.start()
        deadline = time.monotonic() + 120
        while True:  # kill once some of the new vectors are stored (in batches), before the docstore commit
            assert time.monotonic() < deadline and not outcome, f"the upsert ended before the kill: {outcome}"
            if written.exists() and httpx.get(server.url + "/readyz", timeout=10).json()["vectors"] > 3:
                break
            time.sleep(0.05)
        assert server.proc is not None and not outcome  # still embedding
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=30)
        poster.join(timeout=30)
        assert outcome and isinstance(outcome[0], httpx.HTTPError)  # no answer: the process died mid-upsert
    finally:
        server.stop()

    with ApiServer(data, corpus_dir, env=env, args=["--no-ingest"]) as srv:
        ready = httpx.get(srv.url + "/readyz").json()
        assert ready["articles"] == 3  # the previous article set, nothing half-added
        assert ready["vectors"] > ready["chunks"]  # the killed run's vectors: orphans, until the next ingest
        assert httpx.get(srv.url + "/v1/articles/news/big.md").status_code == 404
        _check_ok(httpx.post(srv.url + "/v1/ask", json={"question": QUESTION}, timeout=60))
        out = httpx.post(srv.url + "/v1/ask", json={"question": "成都都市圈第123号产业协作项目预计年产值将达多少?"},
                         timeout=60).json()
        assert all(c["article_id"] != "news/big.md" for c in out["citations"])  # no orphan vector answers

        res = httpx.post(srv.url + "/v1/articles", json=big, headers=admin, timeout=180)  # the next ingest
        assert res.status_code == 201 and res.json()["status"] == "added", res.text
        ready = httpx.get(srv.url + "/readyz").json()
        assert ready["articles"] == 4 and ready["vectors"] == ready["chunks"]  # orphans of the killed run gone
        out = httpx.post(srv.url + "/v1/ask", json={"question": "成都都市圈第123号产业协作项目预计年产值将达多少?"},
                         timeout=60).json()
        assert "1123亿元" in out["answer"] and out["citations"][0]["article_id"] == "news/big.md", out
