"""The command line, end to end with the real embedding model: contracts and error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tongcheng_qa.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(*args: str, data: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--data-dir", str(data), *args])
    return result.exit_code, result.stdout, result.stderr


def test_ingest_search_ask_json_contracts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, _ = _run("ingest", str(REPO / "corpus"), "--json", data=data)
    assert code == 0
    summary = json.loads(out)
    assert set(summary) == {"articles", "added", "updated", "removed", "unchanged", "chunks_embedded", "errors"}
    assert summary["added"] == summary["articles"] >= 1 and summary["chunks_embedded"] > 0

    code, out, _ = _run("ingest", str(REPO / "corpus"), "--json", data=data)
    assert json.loads(out)["chunks_embedded"] == 0

    code, out, _ = _run("search", "金什合作产业园入驻企业", "--k", "3", "--json", data=data)
    rows = json.loads(out)
    assert code == 0 and len(rows) == 3
    assert set(rows[0]) == {"article_id", "chunk_id", "score", "text", "start", "end"}
    body = (REPO / "corpus" / "000_seed.md").read_text(encoding="utf-8")
    assert all(r["text"] in body for r in rows)

    code, out, _ = _run("ask", "Who co-built the Jinshi cooperative industrial park?", "--json", data=data)
    answer = json.loads(out)
    assert code == 0
    assert set(answer) == {
        "answer", "language", "refused", "standalone_question", "citations", "retrieved", "engine", "timings_ms", "short_answer"
    }
    assert answer["language"] == "en" and answer["engine"] == "extractive"
    assert not answer["refused"] and "金牛" in answer["answer"]
    for c in answer["citations"]:
        assert set(c) == {"n", "article_id", "title", "date", "source", "url", "chunk_id", "quote", "start", "end"}


def test_errors_are_one_line_with_the_fix(tmp_path: Path) -> None:
    code, _, err = _run("search", "金牛区", data=tmp_path / "empty")
    assert code == 1 and "tongcheng-qa ingest" in err and "Traceback" not in err
    code, _, err = _run("ingest", str(tmp_path / "missing"), data=tmp_path / "d")
    assert code == 1 and "missing" in err and "Traceback" not in err
    code, _, err = _run("search", "x", "--date-from", "2024/01/01", data=tmp_path / "d")
    assert code == 2 and "YYYY-MM-DD" in err
    code, _, err = _run("models", "--install-gguf", str(REPO / "README.md"), data=tmp_path / "d")
    assert code == 1 and "not a GGUF file" in err


def test_chat_keeps_history_for_follow_ups(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run("ingest", str(REPO / "corpus"), data=data)[0] == 0
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(data), "chat"],
        input="金什合作产业园由哪两地合作共建?\n那它目前入驻了几家企业?\n/new\n/quit\n",
    )
    assert result.exit_code == 0
    out = result.stdout
    assert "金牛区" in out and "4家" in out
    assert "(金什合作产业园" in out  # the rewritten standalone question is shown
    assert "(new conversation)" in out
