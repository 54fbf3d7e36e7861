"""The HTTP API in-process (TestClient, hash embedder): shapes, SSE order, sessions, articles, limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import HashEmbedder
from fastapi.testclient import TestClient
from sse_events import parse_sse as _events

from tongcheng_qa.api import create_app
from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.settings import Settings

ADMIN = {"Authorization": "Bearer s3cret-token"}
ANSWER_KEYS = {"answer", "language", "refused", "standalone_question", "citations", "retrieved", "engine",
               "timings_ms"}
CITATION_KEYS = {"n", "article_id", "title", "date", "source", "url", "chunk_id", "quote", "start", "end"}


def _settings(base: Settings, **api: Any) -> Settings:
    return base.model_copy(update={"api": base.api.model_copy(update={"admin_token": None, **api})})


@pytest.fixture
def kb(settings: Settings, corpus_dir: Path) -> KnowledgeBase:
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    kb.ingest(corpus_dir, progress=False)
    return kb


def _client(settings: Settings, kb: KnowledgeBase, **api: Any) -> TestClient:
    from pydantic import SecretStr

    if "admin_token" in api and api["admin_token"] is not None:
        api["admin_token"] = SecretStr(api["admin_token"])
    return TestClient(create_app(_settings(settings, **api), kb=kb))


@pytest.fixture
def client(settings: Settings, kb: KnowledgeBase) -> Iterator[TestClient]:
    with _client(settings, kb, admin_token="s3cret-token") as c:
        yield c


def _check_answer(out: dict[str, Any], kb: KnowledgeBase) -> None:
    assert ANSWER_KEYS <= set(out)
    assert out["language"] in ("zh", "en") and out["engine"] in ("extractive", "llm")
    assert {"retrieve", "generate", "total"} <= set(out["timings_ms"])
    for c in out["citations"]:
        assert set(c) == CITATION_KEYS
        assert kb.index.docstore.get_article(c["article_id"]).body[c["start"]:c["end"]] == c["quote"]
        assert f"[{c['n']}]" in out["answer"]
    for r in out["retrieved"]:
        assert set(r) == {"chunk_id", "article_id", "score"}


# -- answers ---------------------------------------------------------------------------------------

def test_ask_returns_the_answer_contract_with_verified_quotes(client: TestClient, kb: KnowledgeBase) -> None:
    res = client.post("/v1/ask", json={"question": "金什合作产业园入驻企业有几家?"})
    assert res.status_code == 200
    out = res.json()
    _check_answer(out, kb)
    assert not out["refused"] and "4家" in out["answer"] and out["citations"]
    assert out["citations"][0]["article_id"] == "a.md" and out["session_id"] is None

    refused = client.post("/v1/ask", json={"question": "金什合作产业园的占地面积是多少平方公里?"}).json()
    _check_answer(refused, kb)
    assert refused["refused"] and refused["citations"] == [] and "没有" in refused["answer"]


def test_ask_filters_by_date_and_article(client: TestClient) -> None:
    out = client.post("/v1/ask", json={"question": "企业", "date_to": "2023-12-31"}).json()
    assert {r["article_id"] for r in out["retrieved"]} <= {"en/c.html"}
    out = client.post("/v1/ask", json={"question": "企业", "articles": ["b.txt"]}).json()
    assert {r["article_id"] for r in out["retrieved"]} == {"b.txt"}
    bad = client.post("/v1/ask", json={"question": "企业", "date_from": "2024-02-01", "date_to": "2024-01-01"})
    assert bad.status_code == 400 and "after" in bad.json()["error"]


def test_stream_sends_tokens_then_final_answer_then_done(client: TestClient, kb: KnowledgeBase) -> None:
    res = client.post("/v1/ask/stream", json={"question": "入驻企业有几家"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
    events = _events(res.text)
    names = [n for n, _ in events]
    assert names[-2:] == ["final", "done"] and set(names[:-2]) == {"token"} and len(names) > 3
    final = events[-2][1]
    _check_answer(final, kb)
    assert "".join(d["text"] for n, d in events if n == "token") == final["answer"]  # extractive: exact


def test_stream_refusal_has_its_text_as_tokens_and_no_citations(client: TestClient) -> None:
    # (Chinese: English refusals rest on e5's cross-lingual similarity, which this fixture's
    # hash embedder lacks; tests/test_evidence_selection.py covers them with the real model.)
    events = _events(client.post("/v1/ask/stream", json={"question": "金什合作产业园的占地面积是多少亩?"}).text)
    final = events[-2][1]
    assert final["refused"] and final["citations"] == [] and final["language"] == "zh"
    assert "".join(d["text"] for n, d in events if n == "token") == final["answer"]


# -- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"question": ""}, 422, "question"),
        ({"question": "   \n\t"}, 400, "empty"),
        ({"question": "x" * 2001}, 422, "2000"),
        ({"question": "x", "history": [{"role": "user", "content": "y"}] * 21}, 422, "history"),
        ({"question": "x", "history": [{"role": "system", "content": "y"}]}, 422, "role"),
        ({"question": "x", "engine": "gpt-9"}, 400, "Valid engines"),
        ({"question": "x", "session_id": "no-such-session"}, 404, "not found"),
        ({"question": "x", "top_k": 0}, 422, "top_k"),
        ({"question": "x", "date_from": "2024/01/01"}, 422, "date_from"),
        ({"question": "x", "surprise": 1}, 422, "surprise"),
        ({"question": 42}, 422, "question"),
        ({}, 422, "question"),
    ],
)
def test_bad_questions_get_a_4xx_json_error_naming_the_problem(
    client: TestClient, body: dict[str, Any], status: int, needle: str
) -> None:
    for path in ("/v1/ask", "/v1/ask/stream"):
        res = client.post(path, json=body)
        assert res.status_code == status, (path, res.text)
        assert res.headers["content-type"].startswith("application/json")
        assert needle.lower() in res.json()["error"].lower()


def test_malformed_json_and_oversized_bodies_are_refused(settings: Settings, kb: KnowledgeBase) -> None:
    with _client(settings, kb, max_body_bytes=4096) as client:
        for raw, ctype in ((b'{"question": "x"', "application/json"), (b"question=x", "text/plain"),
                           (b'["x"]', "application/json")):
            res = client.post("/v1/ask", content=raw, headers={"Content-Type": ctype})
            assert res.status_code == 400 and "JSON" in res.json()["error"], raw
        big = client.post("/v1/ask", json={"question": "x" * 5000})
        assert big.status_code == 413 and "4096" in big.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            yield b'{"question": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        chunked = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413


def test_unknown_routes_and_methods_are_json_errors(client: TestClient) -> None:
    res = client.get("/v1/nothing")
    assert res.status_code == 404 and "/docs" in res.json()["error"]
    res = client.get("/v1/ask")
    assert res.status_code == 405 and "GET" in res.json()["error"]


def test_history_and_session_together_are_refused(client: TestClient) -> None:
    sid = client.post("/v1/sessions").json()["session_id"]
    res = client.post("/v1/ask", json={"question": "x", "session_id": sid,
                                       "history": [{"role": "user", "content": "y"}]})
    assert res.status_code == 400 and "not both" in res.json()["error"]


def test_rate_limit_per_client_answers_429_with_retry_after(settings: Settings, kb: KnowledgeBase) -> None:
    with _client(settings, kb, rate_limit_per_minute=3) as client:
        codes = [client.post("/v1/ask", json={"question": "入驻企业有几家"}).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        res = client.post("/v1/ask/stream", json={"question": "入驻企业有几家"})
        assert res.status_code == 429 and int(res.headers["Retry-After"]) >= 1
        assert "3 a minute" in res.json()["error"]
        assert client.get("/v1/articles").status_code == 200  # reading is not rate limited


def test_cors_is_closed_by_default_and_opens_for_configured_origins(settings: Settings, kb: KnowledgeBase) -> None:
    preflight = {"Origin": "https://news.example", "Access-Control-Request-Method": "POST"}
    with _client(settings, kb) as client:
        res = client.post("/v1/ask", json={"question": "入驻企业有几家"}, headers={"Origin": "https://news.example"})
        assert "access-control-allow-origin" not in res.headers
        assert "access-control-allow-origin" not in client.options("/v1/ask", headers=preflight).headers
    with _client(settings, kb, cors_origins=["https://news.example"]) as client:
        res = client.options("/v1/ask", headers=preflight)
        assert res.headers["access-control-allow-origin"] == "https://news.example"
        other = client.options("/v1/ask", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# -- sessions --------------------------------------------------------------------------------------

def test_session_follow_up_is_answered_in_context_and_survives_a_restart(
    settings: Settings, kb: KnowledgeBase
) -> None:
    with _client(settings, kb) as client:
        created = client.post("/v1/sessions")
        assert created.status_code == 201
        sid = created.json()["session_id"]
        first = client.post("/v1/ask", json={"question": "金什合作产业园由谁共建?", "session_id": sid}).json()
        assert first["session_id"] == sid and "金牛区" in first["answer"]
        events = _events(client.post("/v1/ask/stream", json={"question": "它入驻了几家企业?", "session_id": sid}).text)
        follow = events[-2][1]
        assert "金什合作产业园" in follow["standalone_question"] and "4家" in follow["answer"]
        assert follow["session_id"] == sid
    with _client(settings, kb) as client:  # a new app over the same data dir
        stored = client.get(f"/v1/sessions/{sid}")
        assert stored.status_code == 200
        turns = stored.json()["turns"]
        assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
        assert turns[2]["content"] == "它入驻了几家企业?" and turns[2]["answer"] is None
        assert turns[3]["answer"]["citations"] == follow["citations"]
        assert turns[3]["content"] == follow["answer"]
        assert client.get("/v1/sessions/unknown").status_code == 404


def test_a_failed_question_adds_nothing_to_the_session(client: TestClient) -> None:
    sid = client.post("/v1/sessions").json()["session_id"]
    assert client.post("/v1/ask", json={"question": "x", "session_id": sid, "engine": "nope"}).status_code == 400
    assert client.get(f"/v1/sessions/{sid}").json()["turns"] == []


# -- articles --------------------------------------------------------------------------------------

def test_articles_list_search_and_full_text(client: TestClient, kb: KnowledgeBase) -> None:
    listed = client.get("/v1/articles").json()["articles"]
    assert [a["article_id"] for a in listed] == ["a.md", "b.txt", "en/c.html"]
    a = next(x for x in listed if x["article_id"] == "a.md")
    assert a == {"article_id": "a.md", "title": "金牛区与什邡市共建产业园", "date": "2024-01-19",
                 "source": "成都日报", "url": "https://example.org/a", "chunks": a["chunks"]} and a["chunks"] >= 1
    assert [x["article_id"] for x in client.get("/v1/articles", params={"q": "drone"}).json()["articles"]] == [
        "en/c.html"]
    assert client.get("/v1/articles", params={"q": "100%_"}).json()["articles"] == []  # LIKE wildcards escaped
    full = client.get("/v1/articles/en/c.html").json()
    assert full["body"] == kb.index.docstore.get_article("en/c.html").body and full["title"] == "Drone base in Deyang"
    missing = client.get("/v1/articles/nope.md")
    assert missing.status_code == 404 and "GET /v1/articles" in missing.json()["error"]


def test_admin_endpoints_refuse_without_the_right_token(settings: Settings, kb: KnowledgeBase) -> None:
    doc = {"title": "t", "body": "德阳无人机基地营收100亿元。"}
    with _client(settings, kb, admin_token="s3cret-token") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            res = client.post("/v1/articles", json=doc, headers=headers)
            assert res.status_code == 401 and res.headers["WWW-Authenticate"] == "Bearer"
            assert client.delete("/v1/articles/a.md", headers=headers).status_code == 401
        assert client.get("/v1/articles/a.md").status_code == 200  # still there
    with _client(settings, kb) as client:  # no token configured: disabled
        res = client.post("/v1/articles", json=doc, headers=ADMIN)
        assert res.status_code == 403 and "TONGCHENG_QA_API__ADMIN_TOKEN" in res.json()["error"]
    assert len(kb.index.docstore.article_hashes()) == 3


def test_add_replace_and_delete_an_article(client: TestClient, settings: Settings, kb: KnowledgeBase) -> None:
    doc = {"article_id": "news/deyang-drones.md", "title": "德阳无人机基地", "date": "2024-03-01",
           "source": "德阳日报", "url": "https://example.org/d", "body": "德阳无人机产业基地年营收将达120亿元。"}
    added = client.post("/v1/articles", json=doc, headers=ADMIN)
    assert added.status_code == 201 and added.json() == {"article_id": "news/deyang-drones.md", "status": "added",
                                                         "chunks": 1}
    path = settings.corpus_dir / "news" / "deyang-drones.md"
    assert path.is_file() and "德阳日报" in path.read_text(encoding="utf-8")
    out = client.post("/v1/ask", json={"question": "德阳无人机产业基地年营收多少?"}).json()
    assert "120亿元" in out["answer"] and out["citations"][0]["article_id"] == "news/deyang-drones.md"

    same = client.post("/v1/articles", json=doc, headers=ADMIN)
    assert same.status_code == 200 and same.json()["status"] == "unchanged"
    changed = client.post("/v1/articles", json={**doc, "body": "德阳无人机产业基地年营收将达150亿元。"}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["status"] == "updated"
    out = client.post("/v1/ask", json={"question": "德阳无人机产业基地年营收多少?"}).json()
    assert "150亿元" in out["answer"] and "120亿元" not in out["answer"]

    # The folder and the index agree: a folder ingest sees nothing to do.
    report = kb.ingest(settings.corpus_dir, progress=False)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 4)

    gone = client.delete("/v1/articles/news/deyang-drones.md", headers=ADMIN)
    assert gone.status_code == 200 and gone.json() == {"article_id": "news/deyang-drones.md", "deleted": True}
    assert not path.exists() and client.get("/v1/articles/news/deyang-drones.md").status_code == 404
    assert client.delete("/v1/articles/news/deyang-drones.md", headers=ADMIN).status_code == 404
    assert kb.ingest(settings.corpus_dir, progress=False).added == 0  # it does not come back


def test_article_without_id_gets_one_and_bad_ids_are_refused(client: TestClient, settings: Settings) -> None:
    res = client.post("/v1/articles", json={"title": "眉山新闻", "body": "眉山天府新区建设提速。"}, headers=ADMIN)
    assert res.status_code == 201 and res.json()["article_id"].startswith("api/") and res.json()["article_id"].endswith(".md")
    for bad in ("../escape.md", "/abs.md", "a/../../b.md", "x.html", "a//b.md", ".hidden.md", "a b.md"):
        res = client.post("/v1/articles", json={"article_id": bad, "title": "t", "body": "正文。"}, headers=ADMIN)
        assert res.status_code == 400 and "article_id" in res.json()["error"], bad
    assert not (settings.corpus_dir.parent / "escape.md").exists()
    for body in ({"title": "t", "body": "   "}, {"title": "t"}, {"title": "t", "body": "x", "date": "March 1"}):
        assert client.post("/v1/articles", json=body, headers=ADMIN).status_code in (400, 422)


# -- OpenAI-compatible -------------------------------------------------------------------------------

def test_chat_completions_shape_and_citations(client: TestClient, kb: KnowledgeBase) -> None:
    res = client.post("/v1/chat/completions", json={
        "model": "gpt-4o-mini", "temperature": 0.7,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "金什合作产业园由谁共建?"},
                     {"role": "assistant", "content": "金牛区、什邡市。"}, {"role": "user", "content": "它入驻了几家企业?"}]})
    assert res.status_code == 200
    out = res.json()
    assert out["object"] == "chat.completion" and out["model"] == "gpt-4o-mini"
    msg = out["choices"][0]["message"]
    assert msg["role"] == "assistant" and "4家" in msg["content"] and out["choices"][0]["finish_reason"] == "stop"
    assert out["citations"] and out["refused"] is False
    for c in out["citations"]:
        assert kb.index.docstore.get_article(c["article_id"]).body[c["start"]:c["end"]] == c["quote"]

    bad = client.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert bad.status_code == 400 and "last message" in bad.json()["error"]
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 422
    models = client.get("/v1/models").json()
    assert {m["id"] for m in models["data"]} >= {"tongcheng-qa", "extractive", "openai"}


def test_chat_completions_stream_chunks_end_with_citations_then_done(client: TestClient) -> None:
    res = client.post("/v1/chat/completions", json={
        "stream": True, "messages": [{"role": "user", "content": "入驻企业有几家?"}]})
    events = _events(res.text)
    assert events[-1][1] == "[DONE]"
    chunks = [d for _, d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["citations"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == last["answer"] and "4家" in text


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [("/v1/ask", "post"), ("/v1/ask/stream", "post"), ("/v1/chat/completions", "post"),
                         ("/v1/sessions", "post"), ("/v1/sessions/{session_id}", "get"), ("/v1/articles", "get"),
                         ("/v1/articles", "post"), ("/v1/articles/{article_id}", "get"),
                         ("/v1/articles/{article_id}", "delete"), ("/healthz", "get"), ("/readyz", "get")]:
        assert method in paths[path], (path, method)
    ask = paths["/v1/ask"]["post"]
    assert ask["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("AnswerOut")
    assert "400" in ask["responses"] and "429" in ask["responses"]


# -- the LLM path through the API (scripted chat model; the real server is in test_api_live/test_faults) --

def test_llm_stream_over_sse_ends_with_the_verified_answer(settings: Settings, kb: KnowledgeBase) -> None:
    from fakes_llm import ScriptedChatModel

    from tongcheng_qa.assistant import Assistant
    from tongcheng_qa.generators.extractive import ExtractiveGenerator
    from tongcheng_qa.generators.fallback import FallbackGenerator
    from tongcheng_qa.generators.openai_compat import ChatModelGenerator

    model = ScriptedChatModel()
    llm = FallbackGenerator(ChatModelGenerator(model), ExtractiveGenerator(kb.index), 5.0)
    assistant = Assistant(settings, kb=kb, generators={"openai": llm})  # type: ignore[dict-item]
    passages = kb.search("金什合作产业园入驻企业有几家", k=6)
    right = next(i for i, p in enumerate(passages, 1) if "入驻企业4家" in p.chunk.text)
    model.enqueue(f"目前入驻企业4家[{right}],另有3家正在洽谈[9]。")
    with TestClient(create_app(_settings(settings), assistant=assistant)) as client:
        events = _events(client.post("/v1/ask/stream", json={"question": "金什合作产业园入驻企业有几家?",
                                                              "engine": "openai"}).text)
    assert [n for n, _ in events][-2:] == ["final", "done"]
    streamed = "".join(d["text"] for n, d in events if n == "token")
    final = events[-2][1]
    assert f"[{right}]" in streamed and "[9]" in streamed  # the raw LLM text streams as written ...
    assert final["engine"] == "llm" and "[9]" not in final["answer"]  # ... the final answer is verified
    assert [c["n"] for c in final["citations"]] == [1] and "入驻企业4家" in final["citations"][0]["quote"]
    _check_answer(final, kb)
