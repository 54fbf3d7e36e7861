"""HTTP service benchmark on loopback: a real ``tongcheng-qa serve`` (uvicorn, real model, extractive engine).

    python bench/bench_api.py                          # latency, 8 and 32 concurrent clients, TTFT
    python bench/bench_api.py --clients 8 --requests 400 --time-limit 120 --json

Measures, client side:
* ``/v1/ask`` latency p50/p95/p99 one request at a time (``--sequential`` requests);
* for each ``--clients`` level: ``--requests`` requests spread over that many threads (each
  with its own connection), stopped early at ``--time-limit`` seconds: throughput, error
  rate (any non-200), latency percentiles, and the server's RSS before and after (a leak
  shows as growth across levels);
* ``/v1/ask/stream`` time to the first ``token`` event and to the ``final`` event.

Questions cycle through ``eval/gold.jsonl`` (zh and en, answerable and not). The rate limit
is switched off for the run. Client and server share the machine's cores, so the numbers
are a floor for a dedicated server.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from live_server import ApiServer


def questions() -> list[str]:
    rows = [json.loads(line) for line in (REPO / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [r["question"] for r in rows if not r.get("history")]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(lat_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(lat_ms, 50), 1), "p95_ms": round(pct(lat_ms, 95), 1),
            "p99_ms": round(pct(lat_ms, 99), 1), "mean_ms": round(statistics.fmean(lat_ms), 1) if lat_ms else 0.0}


def sequential(url: str, qs: list[str], n: int) -> dict[str, Any]:
    lat: list[float] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(n):
            t = time.perf_counter()
            res = client.post("/v1/ask", json={"question": qs[i % len(qs)]})
            res.raise_for_status()
            lat.append((time.perf_counter() - t) * 1000)
    return {"requests": n, **summary(lat)}


def concurrent(url: str, qs: list[str], clients: int, total: int, time_limit: float, pid: int) -> dict[str, Any]:
    lat: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    counter = iter(range(total))
    deadline = time.monotonic() + time_limit
    rss_before = rss_mb(pid)

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    res = client.post("/v1/ask", json={"question": qs[i % len(qs)]})
                    key = None if res.status_code == 200 else f"HTTP {res.status_code}"
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                dt = (time.perf_counter() - t) * 1000
                with lock:
                    if key is None:
                        lat.append(dt)
                    else:
                        errors[key] = errors.get(key, 0) + 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    wall = time.perf_counter() - t0
    done = len(lat) + sum(errors.values())
    return {
        "clients": clients, "requests": done, "ok": len(lat), "errors": errors,
        "error_rate": round(sum(errors.values()) / done, 4) if done else 0.0,
        "wall_s": round(wall, 2), "throughput_rps": round(len(lat) / wall, 2), **summary(lat),
        "rss_mb_before": round(rss_before, 1), "rss_mb_after": round(rss_mb(pid), 1),
    }


def stream_ttft(url: str, qs: list[str], n: int) -> dict[str, Any]:
    first: list[float] = []
    final: list[float] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(n):
            t = time.perf_counter()
            got_first = False
            with client.stream("POST", "/v1/ask/stream", json={"question": qs[i % len(qs)]}) as res:
                res.raise_for_status()
                for line in res.iter_lines():
                    if line == "event: token" and not got_first:
                        first.append((time.perf_counter() - t) * 1000)
                        got_first = True
                    elif line == "event: final":
                        final.append((time.perf_counter() - t) * 1000)
    return {"requests": n, "first_token_p50_ms": round(pct(first, 50), 1),
            "first_token_p95_ms": round(pct(first, 95), 1), "final_p50_ms": round(pct(final, 50), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="8,32", help="comma-separated concurrency levels")
    ap.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    ap.add_argument("--time-limit", type=float, default=90.0, help="seconds per concurrency level, at most")
    ap.add_argument("--sequential", type=int, default=100, help="one-at-a-time /v1/ask requests")
    ap.add_argument("--stream", type=int, default=30, help="streamed requests for time to first token")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    qs = questions()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(REPO / "corpus", corpus)
        env = {"TONGCHENG_QA_API__RATE_LIMIT_PER_MINUTE": "0"}
        with ApiServer(Path(tmp) / "data", corpus, env=env) as server:
            assert server.proc is not None
            pid = server.proc.pid
            sequential(server.url, qs, 10)  # warm-up
            out: dict[str, Any] = {"questions": len(qs), "rss_mb_start": round(rss_mb(pid), 1)}
            out["sequential"] = sequential(server.url, qs, args.sequential)
            out["stream"] = stream_ttft(server.url, qs, args.stream)
            out["concurrent"] = [
                concurrent(server.url, qs, int(c), args.requests, args.time_limit, pid)
                for c in args.clients.split(",") if c.strip()
            ]
            out["rss_mb_end"] = round(rss_mb(pid), 1)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    s = out["sequential"]
    print(f"/v1/ask one at a time ({s['requests']} requests): p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, "
          f"p99 {s['p99_ms']} ms")
    st = out["stream"]
    print(f"/v1/ask/stream ({st['requests']}): first token p50 {st['first_token_p50_ms']} ms, "
          f"p95 {st['first_token_p95_ms']} ms; final event p50 {st['final_p50_ms']} ms")
    print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'RSS MB before→after':>20}")
    for c in out["concurrent"]:
        print(f"{c['clients']:>7} {c['requests']:>8} {sum(c['errors'].values()):>6} {c['throughput_rps']:>7} "
              f"{c['p50_ms']:>8} {c['p95_ms']:>8} {c['p99_ms']:>8} {c['rss_mb_before']:>9}→{c['rss_mb_after']}")
    print(f"server RSS: {out['rss_mb_start']} MB after warm-up, {out['rss_mb_end']} MB at the end")


if __name__ == "__main__":
    main()
