"""Local LLM latency through a real ``llama_cpp.server``: time to first token, total time, tokens/s.

    python bench/bench_llm.py                       # Qwen2.5-Coder-0.5B Q4_K_M (PyPI parts)
    python bench/bench_llm.py --model 1.5b          # the 1.5B, if its part packages are installed
    python bench/bench_llm.py --model path/to/x.gguf --threads 1 --json

Each prompt is RAG-shaped (a short passage + a question, zh and en), sent once streamed at
temperature 0 after one warm-up request (``--repeat N`` for N rounds). TTFT is the time to the first non-empty content
delta (dominated by prompt evaluation); decode tok/s counts the tokens after the first
over the time after it. Token counts come from the server's ``/extras/tokenize/count``.
Needs ``scripts/install_llm.sh`` (llama-cpp-python[server] + the model parts) and ``openai``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from llm_server import LlamaServer, models_dir, start_llama_server

from tongcheng_qa.gguf import ensure_gguf

SYSTEM = (
    "You answer questions using only the numbered passages. Cite passages as [n]. "
    "Answer in the language of the question. If the passages do not say, say so."
)
PROMPTS: list[tuple[str, str, str]] = [
    (
        "zh-factoid",
        (
            "[1] 金什合作产业园由成都市金牛区与德阳什邡市合作共建,规划面积约3.1平方公里。"
            "金牛区城投集团与什邡市恒新公司按照6∶4的比例入股,成立合资公司负责园区开发运营。"
            "[2] 截至目前,园区已入驻企业4家,另有3家企业正在洽谈。"
        ),
        "金牛区城投集团和什邡市恒新公司的股比是多少?",
    ),
    (
        "zh-refusal",
        (
            "[1] 成都都市圈已有1500余家企业实现跨市域产业协作,推介会上确定了9条重点产业链。"
            "[2] 成德眉资同城化发展以来,四市共同推进交通、公共服务和产业协作。"
        ),
        "金什合作产业园的园区主任叫什么名字?",
    ),
    (
        "en-factoid",
        (
            "[1] A drone maker will build an R&D and manufacturing base in Deyang. "
            "Its operating revenue over ten years is expected to reach 10 billion yuan. "
            "[2] The Jinshi park was co-built by Jinniu district of Chengdu and Shifang city."
        ),
        "How much revenue is the drone project expected to make over ten years?",
    ),
    (
        "en-summary",
        (
            "[1] The Chengdu metropolitan area covers Chengdu, Deyang, Meishan and Ziyang. "
            "More than 1,500 companies cooperate across city lines, and nine key industrial chains were named. "
            "[2] Commuter rail and shared public services are part of the integration plan."
        ),
        "Summarise in two sentences what the integration of the Chengdu metropolitan area involves.",
    ),
]


def _count_tokens(server: LlamaServer, text: str) -> int:
    req = urllib.request.Request(
        server.base_url.removesuffix("/v1") + "/extras/tokenize/count",
        data=json.dumps({"input": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(json.load(r)["count"])


def _run_one(client: Any, server: LlamaServer, passage: str, question: str, max_tokens: int) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Passages:\n{passage}\n\nQuestion: {question}"},
    ]
    start = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    stream = client.chat.completions.create(
        model="local", messages=messages, temperature=0, seed=42, max_tokens=max_tokens, stream=True
    )
    for chunk in stream:
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta:
            if first is None:
                first = time.perf_counter()
            pieces.append(delta)
    end = time.perf_counter()
    text = "".join(pieces)
    n_out = _count_tokens(server, text) if text else 0
    ttft = (first or end) - start
    decode_s = end - (first or end)
    return {
        "prompt_tokens_approx": _count_tokens(server, SYSTEM + messages[1]["content"]) + 12,  # + chat template
        "completion_tokens": n_out,
        "ttft_s": round(ttft, 3),
        "total_s": round(end - start, 3),
        "tokens_per_s": round(n_out / (end - start), 2) if n_out else 0.0,
        "decode_tokens_per_s": round((n_out - 1) / decode_s, 2) if n_out > 1 and decode_s > 0 else 0.0,
        "answer": text,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="0.5b", help="0.5b | 1.5b | a known model name | a .gguf path")
    ap.add_argument("--threads", type=int, default=None, help="decode threads (server default: half the cores)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds over the prompt set (medians over all)")
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--n-batch", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)

    import openai

    gguf = ensure_gguf(args.model, models_dir())
    t0 = time.perf_counter()
    with start_llama_server(gguf, n_ctx=args.n_ctx, n_batch=args.n_batch, n_threads=args.threads) as server:
        load_s = time.perf_counter() - t0
        client = openai.OpenAI(base_url=server.base_url, api_key="not-needed", timeout=600)
        _run_one(client, server, "[1] Warm-up passage.", "Say OK.", 4)
        rows = [
            {"prompt": name, **_run_one(client, server, p, q, args.max_tokens)}
            for _ in range(args.repeat)
            for name, p, q in PROMPTS  # consecutive prompts differ: only the system prompt is KV-cached
        ]

    threads = args.threads or max((os.cpu_count() or 1) // 2, 1)
    summary = {
        "model": gguf.name,
        "threads": threads,
        "n_ctx": args.n_ctx,
        "n_batch": args.n_batch,
        "server_start_s": round(load_s, 2),
        "median_ttft_s": round(statistics.median(r["ttft_s"] for r in rows), 3),
        "median_total_s": round(statistics.median(r["total_s"] for r in rows), 3),
        "median_tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in rows), 3),
        "median_decode_tokens_per_s": round(statistics.median(r["decode_tokens_per_s"] for r in rows), 3),
        "runs": rows,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0
    print(f"{gguf.name}  threads={threads} n_ctx={args.n_ctx} n_batch={args.n_batch}  start {load_s:.1f}s")
    print(f"{'prompt':<12} {'in≈':>5} {'out':>4} {'TTFT s':>7} {'total s':>8} {'tok/s':>6} {'decode':>7}  answer")
    for r in rows:
        answer = r["answer"].replace("\n", " ")[:60]
        print(
            f"{r['prompt']:<12} {r['prompt_tokens_approx']:>5} {r['completion_tokens']:>4} {r['ttft_s']:>7.2f} "
            f"{r['total_s']:>8.2f} {r['tokens_per_s']:>6.1f} {r['decode_tokens_per_s']:>7.1f}  {answer}"
        )
    print(
        f"{'median':<12} {'':>5} {'':>4} {summary['median_ttft_s']:>7.2f} {summary['median_total_s']:>8.2f} "
        f"{summary['median_tokens_per_s']:>6.1f} {summary['median_decode_tokens_per_s']:>7.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
