"""Serving under load: throughput and latency of ``lotus-serve run`` with and without dynamic batching.

Starts the PyTriton server on loopback (fresh ports) once per batching setting and sends encoded images
from real photos: one client sending requests one after another, then ``--clients`` concurrent clients
(each request counted from send to answer). Every phase is bounded by ``--requests`` and
``--max-seconds``. Writes ``<out>/serve_load.json`` + ``.md`` with throughput, p50/p99 latency, the
graph's mean batch, and the goal of issue 16: with dynamic batching, throughput at 8 concurrent
clients >= 0.95x the sequential single-client throughput of the same run.

Runs in the serving venv (PyTriton: docs/serving.md), e.g.
    .venv-serve/bin/python benchmarks/serve_load.py --artifact engines/builtin-tiny-depth-onnx --images ../shared/data/images
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lotus_deploy.bench.provenance import collect, shown_path
from lotus_deploy.core.safe_io import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
NAME = "serve_load"
GOAL = 0.95


def shown(path: Path | str) -> str:
    return shown_path(path, REPO)


class Client:
    """One HTTP client of the served model (tritonclient's clients are per thread)."""

    def __init__(self, port: int, model: str, output: str) -> None:
        import tritonclient.http as http

        self.http = http
        self.client = http.InferenceServerClient(f"127.0.0.1:{port}", connection_timeout=600, network_timeout=600)
        self.model, self.output = model, output

    def ask(self, data: bytes) -> np.ndarray:
        tensor = self.http.InferInput("encoded", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[data]], dtype=object))
        return np.asarray(self.client.infer(self.model, [tensor]).as_numpy(self.output))


def phase(port: int, model: str, output: str, payloads: list[bytes], clients: int, requests: int, max_seconds: float) -> dict[str, Any]:
    """``requests`` requests (cycling through ``payloads``) from ``clients`` threads; stops issuing after ``max_seconds``."""
    lock = threading.Lock()
    issued = [0]
    latencies: list[float] = []
    started = time.perf_counter()

    def worker(_: int) -> None:
        client = Client(port, model, output)
        while True:
            with lock:
                if issued[0] >= requests or time.perf_counter() - started > max_seconds:
                    return
                index = issued[0]
                issued[0] += 1
            sent = time.perf_counter()
            client.ask(payloads[index % len(payloads)])
            with lock:
                latencies.append(time.perf_counter() - sent)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(worker, range(clients)))
    seconds = time.perf_counter() - started
    lat = np.array(latencies)
    return {"clients": clients, "requests": len(latencies), "seconds": round(seconds, 3),
            "throughput_rps": round(len(latencies) / seconds, 3),
            "latency_p50_s": round(float(np.percentile(lat, 50)), 4), "latency_p99_s": round(float(np.percentile(lat, 99)), 4)}


def run_setting(args: argparse.Namespace, payloads: list[bytes], max_batch: int) -> dict[str, Any]:
    """One server (max_batch 1: dynamic batching off): warm-up, sequential, then concurrent clients."""
    from lotus_deploy.runtime.estimator import DepthEstimator
    from lotus_deploy.serve.pytriton_server import GraphStats, ServerSettings, free_local_ports, running_server

    http_port, grpc_port, metrics_port = free_local_ports(3)
    settings = ServerSettings(http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port, max_batch=max_batch,
                              max_queue_delay_us=args.max_queue_delay_us)
    stats = GraphStats()
    with DepthEstimator(args.artifact, processing_res=args.processing_res, batch_size=max_batch) as estimator, \
            running_server(estimator, settings, stats=stats):
        model, output = f"lotus_{estimator.task.value}", estimator.task.value
        phase(http_port, model, output, payloads, 1, len(payloads), args.max_seconds)  # warm-up: every size once
        result: dict[str, Any] = {"max_batch": max_batch, "dynamic_batching": max_batch > 1}
        for label, clients in (("sequential", 1), ("concurrent", args.clients)):
            before = (stats.calls, stats.images)
            row = phase(http_port, model, output, payloads, clients, args.requests, args.max_seconds)
            calls, images = stats.calls - before[0], stats.images - before[1]
            row["graph_mean_batch"] = round(images / calls, 2) if calls else None
            result[label] = row
    return result


def write_markdown(data: dict[str, Any], path: Path) -> None:
    cpu = data["provenance"]["cpu"]
    lines = [f"# Serving under load: {data['artifact']}", "",
             f"`{' '.join(data['command'])}` at commit {data['provenance']['git']['commit'][:12]} "
             f"(tracked changes: {data['provenance']['git']['tracked_changes']}), {data['date']}; {cpu.get('model', '?')}, "
             f"{cpu.get('usable_cpus', '?')} CPUs, ISA {', '.join(cpu.get('simd', [])) or '?'}; PyTriton {data['pytriton']}, "
             f"loopback HTTP, {data['images']} photos cycled, processing res {data['processing_res']}.", "",
             "| dynamic batching | clients | requests | throughput (req/s) | p50 latency (s) | p99 latency (s) | graph mean batch |",
             "|---|---|---|---|---|---|---|"]
    for setting in data["settings"]:
        for label in ("sequential", "concurrent"):
            row = setting[label]
            lines.append(f"| {'on (max batch ' + str(setting['max_batch']) + ')' if setting['dynamic_batching'] else 'off'} | {row['clients']} | "
                         f"{row['requests']} | {row['throughput_rps']} | {row['latency_p50_s']} | {row['latency_p99_s']} | {row['graph_mean_batch']} |")
    goal = data["goal"]
    lines += ["", f"**Goal** (issue 16): with dynamic batching, throughput at {goal['clients']} concurrent clients ≥ {GOAL}× the sequential "
                  f"single-client throughput, same run: **{goal['ratio']}×, {'met' if goal['met'] else 'NOT met'}**."]
    write_text_atomic(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", type=Path, required=True)
    p.add_argument("--images", type=Path, required=True, help="folder of photos sent as requests (cycled)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=64, help="requests per phase (default %(default)s)")
    p.add_argument("--max-seconds", type=float, default=300.0, help="a phase issues no new request after this (default %(default)s)")
    p.add_argument("--processing-res", type=int, default=256)
    p.add_argument("--max-batch", type=int, default=8, help="max batch with dynamic batching on (default %(default)s)")
    p.add_argument("--max-queue-delay-us", type=int, default=2000)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    import pytriton

    photos = sorted(x for x in args.images.iterdir() if x.suffix.lower() in {".jpg", ".jpeg", ".png"})
    payloads = [x.read_bytes() for x in photos]
    provenance = collect()
    command = ["python", "benchmarks/serve_load.py", "--artifact", shown(args.artifact), "--images", shown(args.images), "--clients",
               str(args.clients), "--requests", str(args.requests), "--max-seconds", str(args.max_seconds), "--processing-res",
               str(args.processing_res), "--max-batch", str(args.max_batch), "--max-queue-delay-us", str(args.max_queue_delay_us)]
    if args.out != RESULTS:
        command += ["--out", shown(args.out)]
    settings = [run_setting(args, payloads, args.max_batch), run_setting(args, payloads, 1)]
    on = settings[0]
    ratio = round(on["concurrent"]["throughput_rps"] / on["sequential"]["throughput_rps"], 3)
    data = {"command": command, "date": provenance["date"], "provenance": {"git": provenance["git"], "cpu": provenance["cpu"]},
            "artifact": shown(args.artifact), "images": len(payloads), "processing_res": args.processing_res,
            "pytriton": getattr(pytriton, "__version__", "?"), "settings": settings,
            "goal": {"clients": args.clients, "ratio": ratio, "threshold": GOAL, "met": ratio >= GOAL}}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / f"{NAME}.json", data)
    write_markdown(data, args.out / f"{NAME}.md")
    print(f"dynamic batching, {args.clients} clients vs 1 sequential: {ratio}x ({'met' if ratio >= GOAL else 'NOT met'}, goal >= {GOAL}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
