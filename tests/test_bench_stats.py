"""Statistics, report format and chart of lotus-bench, from known numbers (never timings)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from extras import need

from lotus_deploy.bench import report
from lotus_deploy.bench.stats import achieved_gflops, images_per_second, percentile, summarize


def test_percentiles_from_known_samples():
    samples = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(samples, 50) == 5.5
    assert percentile(samples, 90) == pytest.approx(9.1)
    assert percentile(samples, 99) == pytest.approx(9.91)
    assert percentile(samples, 0) == 1.0 and percentile(samples, 100) == 10.0
    for q in (10, 37.5, 90, 99):
        assert percentile(samples[::-1], q) == pytest.approx(float(np.percentile(samples, q)))


def test_summary_of_known_samples():
    stats = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert stats.n == 8 and stats.median == 4.5 and stats.mean == 5.0
    assert stats.std == pytest.approx(math.sqrt(32 / 7))  # sample standard deviation
    assert (stats.min, stats.max) == (2.0, 9.0)
    one = summarize([3.0])
    assert one.std == 0.0 and one.p99 == 3.0


def test_empty_samples_and_bad_percentile_are_errors():
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_rates():
    assert images_per_second(4, 2.0) == 2.0
    assert achieved_gflops(1.07e12, 16.0) == pytest.approx(66.875)
    assert achieved_gflops(None, 1.0) is None


def _doc():
    """A result document as runner.run_benchmark writes it (two candidates, one scenario, split stages)."""
    def row(cid, label, backend, median, extra=None):
        lat = [median * 0.9, median, median * 1.2]
        return {"candidate": cid, "label": label, "backend": backend, "precision": "fp32", "stage": None, "height": 256, "width": 256,
                "batch": 1, "inputs": ["a.jpg"], "latencies_s": lat, "stats": summarize(lat).to_json(), "images_per_s": 1 / median,
                "flops_per_image": 1.07e12, "gflops_per_s": 1.07e12 / median / 1e9, "peak_rss_mib": 4000.0, "gpu_peak_mib": None, **(extra or {})}
    rows = [
        row("c0", "PyTorch eager", "torch", 20.0, {"speedup_vs_torch_eager": 1.0, "matmul_fraction": 53.5 / 64}),
        row("c1", "onnxruntime fp32", "onnxruntime", 16.0, {"speedup_vs_torch_eager": 1.25, "matmul_fraction": 66.9 / 64,
                                                           "parity": {"reference": "torch", "max_abs": 2e-5, "absrel": 1e-6, "delta1": 1.0}}),
        {**row("c2", "onnxruntime fp32 · unet", "onnxruntime", 3.0), "stage": "unet"},
        {**row("c3", "onnxruntime fp32 · encoder", "onnxruntime", 6.0), "stage": "encoder"},
    ]
    cands = [{"id": f"c{i}", "label": r["label"], "backend": r["backend"], "precision": "fp32", "stage": r["stage"], "artifact": "engines/x",
              "artifact_bytes": 3.8e9, "artifact_sha256": "ab" * 32, "load_s": 12.0, "artifact_build_s": None} for i, r in enumerate(rows)]
    prov = {"date": "2026-01-01T00:00:00+00:00", "cpu": {"model": "Test CPU", "machine": "x86_64", "physical_cores": 2, "logical_cpus": 2,
            "usable_cpus": 2, "simd": ["avx2"], "memory_mib": 24000}, "gpus": [], "jetson": None, "libraries": {"python": "3.11"},
            "git": {"commit": "abc"}, "load_at_start": {"loadavg_1m": 0.1}, "load_at_end": {"loadavg_1m": 2.0}}
    return {"schema": "lotus-bench/1", "command": ["lotus-bench", "--model", "builtin:full"], "settings": {"iterations": 3, "warmup": 1,
            "images": "synthetic", "reference": "float32", "sizes": [[256, 256]], "batches": [1]}, "provenance": prov,
            "matmul": {"size": 4096, "repeats": 3, "numpy_gflops": 64.0, "gflops": 64.0, "before": {"gflops": 63.0}, "after": {"gflops": 64.0}},
            "candidates": cands, "results": rows, "skipped": []}


def test_json_schema_validation_and_roundtrip(tmp_path):
    doc = _doc()
    assert report.validate(doc) == []
    path = tmp_path / "bench.json"
    report.write_json(doc, path)
    assert report.validate(json.loads(path.read_text())) == []
    broken = _doc()
    del broken["results"][0]["stats"]["p99"]
    broken["results"][1]["latencies_s"].append(1.0)
    problems = report.validate(broken)
    assert any("p99" in p for p in problems) and any("stats.n" in p for p in problems)
    assert report.validate({"schema": "lotus-bench/1"})  # missing keys


def test_markdown_table():
    text = report.to_markdown(_doc())
    assert "lotus-bench --model builtin:full" in text
    assert "## 256×256, batch 1" in text
    header = next(line for line in text.splitlines() if line.startswith("| backend |"))
    assert header.count("|") == len(report.COLUMNS) + 1
    ort = next(line for line in text.splitlines() if line.startswith("| onnxruntime fp32 |"))
    cells = [c.strip() for c in ort.strip("|").split("|")]
    assert cells[2] == "16" and cells[7] == "1.25×" and cells[10] == "105 %"
    assert "| PyTorch eager | fp32 | 20 |" in text and "1.00 (baseline)" in text
    assert "GPU: not run" in text  # no GPU in the provenance: GPU backends are marked
    assert "Stage shares" in text and "| encoder | 6 | 66.7 % |" in text
    assert "Test CPU" in text and "64.0 GFLOP/s" in text


def test_chart_file_is_written(tmp_path):
    need("matplotlib")
    from lotus_deploy.bench.chart import draw

    path = draw(_doc(), tmp_path / "sub" / "bench.png")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_render_rewrites_markdown_and_chart_from_json(tmp_path, capsys):
    need("matplotlib")
    from lotus_deploy.cli import bench_cmd

    path = tmp_path / "r.json"
    report.write_json(_doc(), path)
    assert bench_cmd.main(["--render", str(path), "-o", str(tmp_path / "out"), "--name", "again"]) == 0
    assert "## 256×256, batch 1" in (tmp_path / "out" / "again.md").read_text()
    assert (tmp_path / "out" / "again.png").is_file()
    (tmp_path / "bad.json").write_text("{}")
    assert bench_cmd.main(["--render", str(tmp_path / "bad.json")]) == 2
    assert "not a lotus-bench result" in capsys.readouterr().err


def test_plan_labels_two_artifacts_of_the_same_precision_apart(tmp_path):
    from lotus_deploy.bench.plan import plan
    from lotus_deploy.core.artifacts import Artifact

    def artifact(name):
        return Artifact(folder=tmp_path / name, manifest={"kind": "onnx", "task": "depth", "precision": "fp32", "source": {"model": "builtin:tiny"}})

    cands = plan(["torch", "onnxruntime"], [artifact("a"), artifact("b")])
    assert [c.label for c in cands] == ["PyTorch eager", "onnxruntime fp32 [a]", "onnxruntime fp32 [b]"]  # torch once per source model
