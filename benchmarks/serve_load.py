"""Serving under load: throughput and latency of ``lotus-serve run`` with and without dynamic batching.

Starts ``lotus-serve run`` in its own process on loopback (fresh ports) once per batching setting and sends encoded images
from real photos: one client sending requests one after another, then ``--clients`` concurrent clients
(each request counted from send to answer). Every phase is bounded by ``--requests`` and
``--max-seconds``. Writes ``<out>/serve_load.json`` + ``.md`` with throughput, p50/p99 latency, the
graph's mean batch (Triton's metrics), and the goal of issue 16: with dynamic batching, throughput at 8 concurrent
clients >= 0.95x the sequential single-client throughput of the same run.

Runs in the serving venv (PyTriton: docs/serving.md), e.g.
    .venv-serve/bin/python benchmarks/serve_load.py --artifact engines/builtin-tiny-depth-onnx --images ../shared/data/images
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lotus_deploy.bench.provenance import collect, provenance_sentence, shown_path
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


class ServerProcess:
    """``lotus-serve run`` in its own process on fresh loopback ports, as a deployment runs it (its own
    interpreter: client threads here never compete with the server for one GIL)."""

    def __init__(self, args: argparse.Namespace, max_batch: int) -> None:
        from lotus_deploy.serve.pytriton_server import free_local_ports

        self.http_port, grpc_port, self.metrics_port = free_local_ports(3)
        argv = [sys.executable, "-m", "lotus_deploy.cli.serve_cmd", "run", str(args.artifact), "--http-port", str(self.http_port),
                "--grpc-port", str(grpc_port), "--metrics-port", str(self.metrics_port), "--max-batch", str(max_batch),
                "--max-queue-delay-us", str(args.max_queue_delay_us), "--processing-res", str(args.processing_res)]
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, model: str, timeout_s: float = 300.0) -> None:
        import tritonclient.http as http

        client = http.InferenceServerClient(f"127.0.0.1:{self.http_port}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"lotus-serve run exited ({self.process.returncode}):\n{self.log.read().decode(errors='replace')[-3000:]}")
            try:
                if client.is_model_ready(model) and client.is_model_ready(f"{model}_graph"):
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            time.sleep(0.5)
        raise SystemExit(f"lotus-serve run was not ready within {timeout_s:.0f} s")

    def graph_counts(self, model: str) -> tuple[int, int]:
        """Triton's own counters for the graph model, from its metrics endpoint: (executions, images).

        (PyTriton restricts the statistics API to an access token; the Prometheus metrics are open.)"""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=30) as response:
            text = response.read().decode()
        counts = {}
        for name in ("nv_inference_exec_count", "nv_inference_count"):
            match = re.search(rf'^{name}{{[^}}]*model="{re.escape(model)}_graph"[^}}]*}} (\S+)$', text, re.MULTILINE)
            if match is None:
                raise SystemExit(f"Triton's metrics have no {name} for {model}_graph")
            counts[name] = int(float(match.group(1)))
        return counts["nv_inference_exec_count"], counts["nv_inference_count"]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def run_setting(args: argparse.Namespace, payloads: list[bytes], max_batch: int, model: str, output: str) -> dict[str, Any]:
    """One server (max_batch 1: dynamic batching off): warm-up, sequential, then concurrent clients."""
    server = ServerProcess(args, max_batch)
    try:
        server.wait_ready(model)
        phase(server.http_port, model, output, payloads, 1, len(payloads), args.max_seconds)  # warm-up: every size once
        result: dict[str, Any] = {"max_batch": max_batch, "dynamic_batching": max_batch > 1}
        for label, clients in (("sequential", 1), ("concurrent", args.clients)):
            calls_before, images_before = server.graph_counts(model)
            row = phase(server.http_port, model, output, payloads, clients, args.requests, args.max_seconds)
            calls, images = (a - b for a, b in zip(server.graph_counts(model), (calls_before, images_before), strict=True))
            row["graph_mean_batch"] = round(images / calls, 2) if calls else None
            result[label] = row
    finally:
        server.stop()
    return result


def write_markdown(data: dict[str, Any], path: Path) -> None:
    lines = [f"# Serving under load: {data['artifact']}", "",
             provenance_sentence(data) + f"; PyTriton {data['pytriton']}, "
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
    from lotus_deploy.core.artifacts import open_artifact

    task = open_artifact(args.artifact).task.value
    model = f"lotus_{task}"
    settings = [run_setting(args, payloads, args.max_batch, model, task), run_setting(args, payloads, 1, model, task)]
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
