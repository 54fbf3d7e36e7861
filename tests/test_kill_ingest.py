"""A real SIGKILL in the middle of an ingest: the previous index still answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from fakes import HashEmbedder

from tongcheng_qa.knowledge_base import KnowledgeBase
from tongcheng_qa.settings import Settings

TESTS = Path(__file__).resolve().parent

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from fakes import HashEmbedder
    import tongcheng_qa.indexing
    from tongcheng_qa.knowledge_base import KnowledgeBase
    from tongcheng_qa.settings import Settings

    tongcheng_qa.indexing._EMBED_BATCH = 4  # several batches: the kill lands after some vectors were added
    marker = Path({marker!r})

    class SlowEmbedder(HashEmbedder):
        def embed_passages(self, texts):
            if self.calls >= 1:
                marker.write_text("embedding")
                time.sleep(60)  # killed here
            return super().embed_passages(texts)

    settings = Settings(data_dir=Path({data!r}), cache_dir=Path({data!r}) / "cache")
    KnowledgeBase(settings, embedder=SlowEmbedder()).ingest(Path({corpus!r}), progress=False)
    """
)


def _write_articles(folder: Path, n: int, tag: str) -> None:
    for i in range(n):
        text = "\n\n".join(f"第{i}篇{tag}文章第{j}段:成都都市圈{tag}项目编号{i * 100 + j}已经落地投产。" for j in range(12))
        (folder / f"{tag}-{i:03d}.txt").write_text(f"{tag}文章{i}\n\n{text}\n", encoding="utf-8")


def test_sigkill_mid_ingest_keeps_previous_index_and_next_ingest_completes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_articles(corpus, 10, "旧")
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    KnowledgeBase(settings, embedder=HashEmbedder()).ingest(corpus, progress=False)
    kb = KnowledgeBase(settings, embedder=HashEmbedder())
    before = set(kb.index.docstore.chunk_ids())
    old_top = [p.chunk_id for p in kb.search("旧文章第3段 项目编号", k=5)]

    for p in corpus.glob("旧-00[0-4].txt"):
        p.unlink()  # removals must not be applied by the killed run either
    _write_articles(corpus, 10, "新")
    marker = tmp_path / "marker"
    script = CHILD.format(tests=str(TESTS), marker=str(marker), data=str(settings.data_dir), corpus=str(corpus))
    child = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, "child ingest ended before it could be killed"
        assert time.monotonic() < deadline, "child never reached the embedding step"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    after_kill = KnowledgeBase(settings, embedder=HashEmbedder())
    assert set(after_kill.index.docstore.chunk_ids()) == before
    assert [p.chunk_id for p in after_kill.search("旧文章第3段 项目编号", k=5)] == old_top
    assert all(p.chunk_id in before for p in after_kill.search("新文章 项目编号", k=20))

    report = after_kill.ingest(corpus, progress=False)
    assert (report.added, report.removed) == (10, 5)
    docs = set(after_kill.index.docstore.chunk_ids())
    assert docs == after_kill.index.vectors.ids()
    assert after_kill.search("新文章第2段", k=1)[0].article_id.startswith("新-")
