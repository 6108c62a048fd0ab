"""The export's parity check can fail: a semantic slip in the fused (traced) module is caught by the
independent float64 oracle, exits 2 and publishes nothing (issue 12, item 2)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from extras import need
from lotus_checkpoints import tiny_with_scaled_vae_layer

torch = need("torch")
need("onnxruntime")

from lotus_deploy.cli import export_cmd  # noqa: E402
from lotus_deploy.core.config import Task  # noqa: E402
from lotus_deploy.export.oracle import oracle_output  # noqa: E402
from lotus_deploy.model import fused  # noqa: E402
from lotus_deploy.model.checkpoint import load_checkpoint  # noqa: E402

TOLERANCE = 1e-4  # the fp32 export rule (docs/contract.md)


@pytest.fixture(scope="module")
def saturating_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """builtin:tiny with its VAE decoder's last conv scaled 30x, so the output reaches the clamp (a "no clamp"
    slip is then visible) and every pixel carries a large signal."""
    return tiny_with_scaled_vae_layer(tmp_path_factory.mktemp("mutations") / "saturating-depth", "decoder.conv_out", 30.0)


def _prompt_77(checkpoint_folder: Path) -> Any:
    """The empty prompt padded to 77 tokens, as a naive port would embed it."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(checkpoint_folder, subfolder="tokenizer")
    encoder = CLIPTextModel.from_pretrained(checkpoint_folder, subfolder="text_encoder")
    ids = tokenizer("", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder(ids)[0].float()


def _no_clamp(module: Any) -> None:
    def decode_output(prediction: Any) -> Any:
        img = module.vae.decode(prediction / module.scaling_factor, return_dict=False)[0] / 2 + 0.5
        return img.mean(dim=1, keepdim=True)

    module.decode_output = decode_output


def _sample_not_mean(module: Any) -> None:
    module.encode = lambda image: module.vae.encode(image).latent_dist.sample() * module.scaling_factor


MUTATIONS: dict[str, Callable[[Any, Path], None]] = {
    "t=0": lambda m, _: m.get_buffer("timestep").fill_(0),
    "sample() instead of the posterior mean": lambda m, _: _sample_not_mean(m),
    "no latent scaling": lambda m, _: setattr(m, "scaling_factor", 1.0),
    "a 77-token prompt": lambda m, folder: setattr(m, "prompt_embeds", _prompt_77(folder)),
    "task switch flipped": lambda m, _: m.get_buffer("task_emb").copy_(torch.tensor([[0.0, math.sin(1.0), 1.0, math.cos(1.0)]])),
    "no clamp": lambda m, _: _no_clamp(m),
}


def _mutated_builder(name: str, folder: Path) -> Callable[..., Any]:
    original = fused.build_module

    def build(checkpoint: Any, task: Task) -> Any:
        module = original(checkpoint, task)
        MUTATIONS[name](module, folder)
        return module

    return build


def test_the_unmutated_saturating_checkpoint_exports(saturating_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "ok"
    code = export_cmd.main(["--model", str(saturating_checkpoint), "--task", "depth", "--output", str(out), "--parity-size", "64", "--quiet"])
    assert code == 0 and (out / "manifest.json").is_file()


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_semantic_slip_fails_export_parity(mutation: str, saturating_checkpoint: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = load_checkpoint(str(saturating_checkpoint))
    batch = (np.random.default_rng(0).random((2, 3, 64, 64)) * 2 - 1).astype(np.float32)
    module = _mutated_builder(mutation, saturating_checkpoint)(checkpoint, Task.DEPTH)
    torch.manual_seed(0)
    with torch.no_grad():
        mutated = module(torch.from_numpy(batch)).numpy()
    moved = float(np.abs(mutated - oracle_output(checkpoint, Task.DEPTH, batch)).max())
    assert moved >= 100 * TOLERANCE, f"{mutation} moves the output by only {moved:.3g}"

    monkeypatch.setattr(fused, "build_module", _mutated_builder(mutation, saturating_checkpoint))
    out = tmp_path / "mutated"
    code = export_cmd.main(["--model", str(saturating_checkpoint), "--task", "depth", "--output", str(out), "--parity-size", "64", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "fails parity" in err, err
    assert not out.exists() and not list(tmp_path.glob(".*"))  # nothing published, no staging left
