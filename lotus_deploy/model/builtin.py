"""Built-in Lotus-D-shaped checkpoints, for offline use.

``builtin:tiny`` builds in seconds (tests); ``builtin:full`` has the exact SD2-base UNet and VAE shapes
of the released Lotus-D checkpoints (~951 M parameters) for realistic exports and timings. Both have
seeded random weights. ``builtin:demo`` is small and *trained* (on rendered scenes, docs/demo-model.md):
one UNet per task sharing one VAE and text encoder, as the released checkpoints are separate per task;
its weights ship with the package (``model/demo/*.safetensors``). All are written once to a cache folder
in the diffusers layout and then loaded through the same code as any downloaded checkpoint, so that
code is what the tests exercise.

The CLIP text encoder only runs once at export (to embed the empty prompt), so the built-in ones keep
the 1024-wide output of SD2's encoder but use one layer; the tokenizer is generated (byte-level
vocabulary plus CLIP's BOS/EOS), since none can be downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.cache import cache_root
from ..core.errors import CheckpointError
from ..core.safe_io import make_temp_folder, normalize_permissions

BUILTIN_PREFIX = "builtin:"
_FORMAT_VERSION = 1
DEMO = "demo"
DEMO_WEIGHTS = Path(__file__).resolve().parent / "demo"  # package data: vae, unet-depth, unet-normal, text-encoder
DEMO_FILES = {"vae": "vae.safetensors", "unet-depth": "unet-depth.safetensors", "unet-normal": "unet-normal.safetensors",
              "text_encoder": "text-encoder.safetensors"}
DEMO_CARD = "demo.json"  # provenance, training command and seed, licence, measured accuracy


@dataclass(frozen=True)
class BuiltinSpec:
    unet: dict[str, Any]
    vae: dict[str, Any]
    text_hidden: int
    text_layers: int
    text_heads: int
    seed: int = 0


_LOTUS_UNET = {"class_embed_type": "projection", "projection_class_embeddings_input_dim": 4, "in_channels": 4, "out_channels": 4}

SPECS: dict[str, BuiltinSpec] = {
    "tiny": BuiltinSpec(
        unet={
            **_LOTUS_UNET,
            "sample_size": 8,
            "block_out_channels": (32, 64),
            "layers_per_block": 1,
            "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
            "attention_head_dim": (2, 4),
            "cross_attention_dim": 32,
            "norm_num_groups": 8,
            "use_linear_projection": True,
        },
        vae={
            "block_out_channels": (8, 16, 16, 16),
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4,
            "layers_per_block": 1,
            "latent_channels": 4,
            "norm_num_groups": 4,
            "sample_size": 64,
        },
        text_hidden=32,
        text_layers=1,
        text_heads=2,
    ),
    # stabilityai/stable-diffusion-2-base shapes + Lotus-D's class projection (docs/model.md).
    "full": BuiltinSpec(
        unet={
            **_LOTUS_UNET,
            "sample_size": 96,
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            "attention_head_dim": (5, 10, 20, 20),
            "cross_attention_dim": 1024,
            "norm_num_groups": 32,
            "use_linear_projection": True,
        },
        vae={
            "block_out_channels": (128, 256, 512, 512),
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4,
            "layers_per_block": 2,
            "latent_channels": 4,
            "norm_num_groups": 32,
            "sample_size": 768,
        },
        text_hidden=1024,
        text_layers=1,
        text_heads=16,
    ),
    # Small enough to train on a 2-core CPU in minutes and to ship (each file < 2 MiB in fp16).
    DEMO: BuiltinSpec(
        unet={
            **_LOTUS_UNET,
            "sample_size": 32,
            "block_out_channels": (32, 48, 48),
            "layers_per_block": 1,
            # Attention (self and cross) at 1/16 scale and in the mid block only, with 2 heads: at the top
            # level (768 tokens for a 256x192 image), with 8 heads, each training step took 5x as long, and
            # on equal training time the model without it scored better (docs/demo-model.md).
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            "attention_head_dim": 2,  # diffusers reads it as the number of heads
            "cross_attention_dim": 32,
            "norm_num_groups": 8,
            "use_linear_projection": True,
        },
        vae={
            "block_out_channels": (16, 32, 64, 64),
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4,
            "layers_per_block": 1,
            "latent_channels": 4,
            "norm_num_groups": 8,
            "sample_size": 256,
        },
        text_hidden=32,
        text_layers=1,
        text_heads=2,
        seed=1234,
    ),
}


def builtin_names() -> list[str]:
    return [BUILTIN_PREFIX + name for name in SPECS]


def is_builtin_folder(folder: Path) -> bool:
    """True for a folder inside the built-in model cache (generated here, never downloaded)."""
    try:
        Path(folder).resolve().relative_to((cache_root() / "builtin").resolve())
    except ValueError:
        return False
    return True


def builtin_path(model: str, task: str | None = None) -> Path:
    """Folder of a built-in checkpoint, building it on first use (``builtin:demo``: the UNet of ``task``, default depth)."""
    name = model[len(BUILTIN_PREFIX) :]
    if name not in SPECS:
        raise CheckpointError(f"unknown built-in model {model!r}", f"use one of: {', '.join(builtin_names())}")
    if name == DEMO:
        task = task or "depth"
        card = demo_card()
        folder = cache_root() / "builtin" / f"{name}-{task}-{card['weights_sha256'][:12]}"  # new weights, new folder
        if not (folder / "model_index.json").is_file():
            _build(SPECS[name], folder, demo_task=task)
        return folder
    folder = cache_root() / "builtin" / f"{name}-v{_FORMAT_VERSION}"
    if not (folder / "model_index.json").is_file():
        _build(SPECS[name], folder)
    return folder


def demo_card() -> dict[str, Any]:
    """``builtin:demo``'s card (provenance, seed, licence, accuracy); a clear error where the weights are missing."""
    card = DEMO_WEIGHTS / DEMO_CARD
    missing = [f for f in DEMO_FILES.values() if not (DEMO_WEIGHTS / f).is_file()]
    if not card.is_file() or missing:
        raise CheckpointError(f"builtin:demo's weights are not in this install ({DEMO_WEIGHTS}: missing {', '.join(missing) or DEMO_CARD})",
                              "reinstall lotus-deploy, or train them: python -m lotus_deploy.model.demo.train")
    data: dict[str, Any] = json.loads(card.read_text())
    return data


def _load_demo_weights(module: Any, file: str) -> None:
    """Shipped fp16 weights into a float32 module; every tensor must match."""
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(DEMO_WEIGHTS / file)).items()}
    module.load_state_dict(state, strict=True)


def byte_vocab() -> dict[str, int]:
    """CLIP's byte-to-unicode alphabet, each symbol alone and word-final, then BOS and EOS."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    symbols = [chr(code) for code in codes]
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    vocab.update({symbol + "</w>": len(symbols) + index for index, symbol in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def _write_tokenizer(folder: Path) -> int:
    from transformers import CLIPTokenizer

    vocab = byte_vocab()
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file = Path(scratch) / "vocab.json"
        merges_file = Path(scratch) / "merges.txt"
        vocab_file.write_text(json.dumps(vocab))
        merges_file.write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77)
        tokenizer.save_pretrained(str(folder))
    return len(vocab)


def text_encoder_config(spec: BuiltinSpec, vocab_size: int) -> Any:
    """The one-layer CLIP text encoder of a built-in model (BOS and EOS are the vocabulary's last two ids)."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=spec.text_hidden, intermediate_size=spec.text_hidden * 4,
                          num_hidden_layers=spec.text_layers, num_attention_heads=spec.text_heads, max_position_embeddings=77,
                          hidden_act="gelu", projection_dim=spec.text_hidden, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
                          pad_token_id=vocab_size - 1)


def _build(spec: BuiltinSpec, folder: Path, demo_task: str | None = None) -> None:
    """Create the checkpoint in a staging folder and rename it into place (safe under concurrency).

    ``demo_task``: build ``builtin:demo`` with that task's UNet, from the shipped weights."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    staging = make_temp_folder(folder.parent, prefix=f".{folder.name}.")
    try:
        torch.manual_seed(spec.seed)
        vocab_size = _write_tokenizer(staging / "tokenizer")
        text_encoder = CLIPTextModel(text_encoder_config(spec, vocab_size))
        unet = UNet2DConditionModel(**spec.unet)
        vae = AutoencoderKL(**spec.vae)
        if demo_task is not None:
            _load_demo_weights(text_encoder, DEMO_FILES["text_encoder"])
            _load_demo_weights(unet, DEMO_FILES[f"unet-{demo_task}"])
            _load_demo_weights(vae, DEMO_FILES["vae"])
        text_encoder.save_pretrained(staging / "text_encoder")
        # diffusers mixins (ModelMixin/ConfigMixin) provide save_pretrained; mypy cannot see them through diffusers lazy imports
        unet.save_pretrained(staging / "unet")  # type: ignore[attr-defined]
        vae.save_pretrained(staging / "vae")  # type: ignore[attr-defined]
        DDPMScheduler(num_train_timesteps=1000, prediction_type="sample").save_pretrained(staging / "scheduler")  # type: ignore[attr-defined]
        index = {
            "_class_name": "LotusDPipeline",
            "_diffusers_version": "builtin",
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "scheduler": ["diffusers", "DDPMScheduler"],
        }
        (staging / "model_index.json").write_text(json.dumps(index, indent=2))
        if demo_task is not None:
            card = demo_card()
            (staging / "LICENSE.txt").write_text(f"{card['licence']}\n")
            (staging / DEMO_CARD).write_text(json.dumps(card, indent=2) + "\n")
        else:
            (staging / "LICENSE.txt").write_text("Random weights generated by lotus-deploy (seeded); no licence restrictions.\n")
        normalize_permissions(staging)
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / "model_index.json").is_file():  # a concurrent build won the race only if it finished
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
