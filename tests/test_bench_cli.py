"""``lotus-bench`` end to end on builtin:tiny (1 iteration; checks structure, never timings) and its errors."""

from __future__ import annotations

import json

from extras import need

from lotus_deploy.cli import bench_cmd


def test_unknown_backend_is_a_one_line_error(capsys, tmp_path):
    code = bench_cmd.main(["--artifact", str(tmp_path), "--backend", "no-such-backend"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "unknown backend 'no-such-backend'" in err and "onnxruntime" in err


def test_missing_artifact_is_a_one_line_error(capsys, tmp_path):
    code = bench_cmd.main(["--artifact", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "does not exist" in err


def test_folder_that_is_not_an_artifact_is_a_one_line_error(capsys, tmp_path):
    code = bench_cmd.main(["--artifact", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no manifest.json" in err


def test_nothing_to_benchmark_and_bad_sizes(capsys, tmp_path):
    assert bench_cmd.main([]) == 2
    assert "nothing to benchmark" in capsys.readouterr().err
    assert bench_cmd.main(["--artifact", str(tmp_path), "--size", "100"]) == 2
    assert "multiple of 64" in capsys.readouterr().err


def test_size_and_option_parsing():
    assert bench_cmd.parse_size("256") == (256, 256)
    assert bench_cmd.parse_size("384x512") == (384, 512)
    assert bench_cmd.parse_option("torch-optimized.compile=True") == ("torch-optimized", "compile", True)
    assert bench_cmd.parse_option("onnxruntime.threads=2") == ("onnxruntime", "threads", 2)


def test_tiny_end_to_end(tmp_path, monkeypatch, capsys):
    need("torch")
    need("onnxruntime")
    need("matplotlib")
    from lotus_deploy.bench.report import validate

    monkeypatch.chdir(tmp_path)  # --model exports into ./engines/
    out = tmp_path / "out"
    code = bench_cmd.main(["--model", "builtin:tiny", "--backend", "torch", "--backend", "onnxruntime", "--stages", "--size", "64",
                           "--batch", "1", "--batch", "2", "--iterations", "2", "--warmup", "0", "--matmul-size", "128", "-o", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    doc = json.loads((out / "bench.json").read_text())
    assert validate(doc) == []
    assert (out / "bench.md").is_file() and (out / "bench.png").stat().st_size > 1000
    assert doc["settings"]["iterations"] == 2 and doc["settings"]["interleaved"] is True
    assert doc["command"][:3] == ["lotus-bench", "--model", "builtin:tiny"]
    labels = {c["label"] for c in doc["candidates"]}
    assert {"PyTorch eager", "onnxruntime fp32", "onnxruntime fp32 · encoder", "onnxruntime fp32 · unet", "onnxruntime fp32 · decoder"} <= labels
    assert all(not c.get("error") for c in doc["candidates"])
    results = doc["results"]
    assert len(results) == 2 * 5 and all("error" not in r for r in results)
    assert {(r["batch"], r["height"]) for r in results} == {(1, 64), (2, 64)}
    for row in results:
        assert row["stats"]["n"] == 2 and len(row["latencies_s"]) == 2
        assert row["flops_per_image"] > 0 and row["gflops_per_s"] > 0 and row["matmul_fraction"] > 0
        assert row["peak_rss_mib"] > 0 and len(row["matmul_rounds_gflops"]) == 2 and row["matmul_fraction_rounds"] > 0
    ort_rows = [r for r in results if r["label"] == "onnxruntime fp32"]
    assert all(r["parity"]["max_abs"] < 1e-3 and r["speedup_vs_torch_eager"] > 0 for r in ort_rows)
    decoder = [r for r in results if r["stage"] == "decoder"]
    assert all(r["parity"]["max_abs"] < 1e-3 for r in decoder)  # the chained split graphs compute the fused output
    prov = doc["provenance"]
    assert prov["cpu"]["logical_cpus"] >= 1 and "numpy" in prov["libraries"] and prov["date"]
    assert doc["matmul"]["gflops"] > 0
    md = (out / "bench.md").read_text()
    assert "## 64×64, batch 2" in md and "Stage shares" in md
