"""The real service: `tongcheng-qa serve` in a subprocess (uvicorn, real embedding model) on loopback.

The `openai` package talks to it unchanged; sessions survive a process restart; a configured
LLM that is down shows in /readyz while answers still come (extractive).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from conftest import CORPUS
from live_server import ApiServer, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("live") / "corpus"
    shutil.copytree(CORPUS, dst)
    return dst


@pytest.fixture(scope="module")
def server(corpus_copy: Path) -> Iterator[ApiServer]:
    with ApiServer(corpus_copy.parent / "data", corpus_copy) as srv:
        yield srv


def _body(article_id: str, server: ApiServer) -> str:
    return str(httpx.get(f"{server.url}/v1/articles/{article_id}").json()["body"])


def test_openai_client_gets_the_answer_and_the_citations(server: ApiServer) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    completion = client.chat.completions.create(
        model="tongcheng-qa", messages=[{"role": "user", "content": "金什合作产业园目前入驻了几家企业?"}])
    text = completion.choices[0].message.content or ""
    assert "4家" in text and "[1]" in text
    extra = completion.model_extra or {}
    citations = extra["citations"]
    assert citations and extra["refused"] is False
    c = citations[0]
    assert _body(c["article_id"], server)[c["start"]:c["end"]] == c["quote"] and "4家" in c["quote"]

    stream = client.chat.completions.create(
        model="extractive", stream=True,
        messages=[{"role": "user", "content": "Who co-built the Jinshi cooperative industrial park?"}])
    parts: list[str] = []
    last_extra: dict[str, object] = {}
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.model_extra and "citations" in chunk.model_extra:
            last_extra = chunk.model_extra
    streamed = "".join(parts)
    assert streamed == last_extra["answer"] and "Jinniu" in streamed
    assert last_extra["citations"] and last_extra["refused"] is False


def test_sessions_survive_a_server_restart(corpus_copy: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ApiServer(data, corpus_copy) as srv:
        sid = httpx.post(srv.url + "/v1/sessions").json()["session_id"]
        first = httpx.post(srv.url + "/v1/ask", json={"question": "金什合作产业园由哪两地共建?", "session_id": sid},
                           timeout=30).json()
        assert "金牛区" in first["answer"]
    with ApiServer(data, corpus_copy, args=["--no-ingest"]) as srv:
        follow = httpx.post(srv.url + "/v1/ask", json={"question": "它目前入驻了几家企业?", "session_id": sid},
                            timeout=30).json()
        assert "金什合作产业园" in follow["standalone_question"] and "4家" in follow["answer"]
        turns = httpx.get(f"{srv.url}/v1/sessions/{sid}").json()["turns"]
        assert [t["content"] for t in turns[::2]] == ["金什合作产业园由哪两地共建?", "它目前入驻了几家企业?"]
        assert turns[1]["answer"]["citations"] == first["citations"]


def test_unreachable_llm_is_reported_and_answers_fall_back(corpus_copy: Path, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = {"TONGCHENG_QA_LLM__BASE_URL": dead, "TONGCHENG_QA_ANSWER__ENGINE": "openai",
           "TONGCHENG_QA_LLM__TIMEOUT_S": "5"}
    with ApiServer(tmp_path / "data", corpus_copy, env=env) as srv:
        ready = httpx.get(srv.url + "/readyz").json()
        assert ready["default_engine"] == "openai"
        assert ready["llm"]["configured"] is True and ready["llm"]["reachable"] is False
        assert dead in ready["llm"]["error"]
        out = httpx.post(srv.url + "/v1/ask", json={"question": "金什合作产业园目前入驻了几家企业?"}, timeout=60).json()
        assert out["engine"] == "extractive" and not out["refused"] and "4家" in out["answer"]
