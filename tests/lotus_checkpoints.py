"""Make Lotus-D checkpoints the project has never seen, and an independent float64 reference.

The reference is written from docs/model.md directly against diffusers/transformers components, not
through ``lotus_deploy.model``, so that an export can be held against something it did not build.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def make_unseen_checkpoint(folder: Path, seed: int = 123) -> Path:
    """A small Lotus-D with a layout unlike builtin:tiny (3 UNet levels, int head dim, wider VAE)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from lotus_deploy.model.builtin import _write_tokenizer

    torch.manual_seed(seed)
    vocab = _write_tokenizer(folder / "tokenizer")
    CLIPTextModel(CLIPTextConfig(vocab_size=vocab, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                 num_attention_heads=4, max_position_embeddings=77, bos_token_id=vocab - 2,
                                 eos_token_id=vocab - 1, pad_token_id=vocab - 1)).save_pretrained(folder / "text_encoder")
    UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 48, 48), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=8, cross_attention_dim=48, norm_num_groups=16, use_linear_projection=False,
        class_embed_type="projection", projection_class_embeddings_input_dim=4,
    ).save_pretrained(folder / "unet")
    AutoencoderKL(block_out_channels=(16, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, latent_channels=4,
                  norm_num_groups=8, scaling_factor=0.13025).save_pretrained(folder / "vae")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "LotusDPipeline"}))
    return folder


def independent_reference(folder: Path, images: np.ndarray, task: str) -> np.ndarray:
    """docs/model.md step by step, everything in float64 (text encoder included)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").double().eval()
    vae = AutoencoderKL.from_pretrained(folder / "vae").double().eval()
    unet = UNet2DConditionModel.from_pretrained(folder / "unet").double().eval()
    with torch.no_grad():
        ids = tokenizer("", padding="do_not_pad", return_tensors="pt").input_ids
        assert ids.shape[1] == 2
        embeds = text_encoder(ids)[0]
        x = torch.from_numpy(images).double()
        n = x.shape[0]
        z = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
        switch = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        task_emb = torch.cat([torch.sin(switch), torch.cos(switch)], dim=-1).repeat(n, 1)
        pred = unet(z, torch.tensor([999]), encoder_hidden_states=embeds.repeat(n, 1, 1), class_labels=task_emb).sample
        img = vae.decode(pred / vae.config.scaling_factor).sample
        img = (img / 2 + 0.5).clamp(0, 1)
        out = img.mean(dim=1, keepdim=True) if task == "depth" else img * 2 - 1
    return out.numpy()


def put_in_hf_cache(checkpoint: Path, hf_home: Path, repo_id: str) -> Path:
    """Lay ``checkpoint`` out as a Hugging Face hub cache entry (refs/main -> one snapshot)."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(checkpoint, repo / "snapshots" / commit)
    return repo


def tiny_with_scaled_vae_layer(folder: Path, layer: str, factor: float) -> Path:
    """builtin:tiny copied to ``folder`` with one VAE conv (``layer``, e.g. ``decoder.conv_in``) scaled by ``factor``:
    a checkpoint with the real structure whose activations or outputs reach places random weights do not."""
    import shutil

    import torch
    from diffusers import AutoencoderKL

    from lotus_deploy.model.checkpoint import resolve_checkpoint

    shutil.copytree(resolve_checkpoint("builtin:tiny"), folder)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae")
    conv = vae.get_submodule(layer)
    with torch.no_grad():
        conv.weight.mul_(factor)
        conv.bias.mul_(factor)
    vae.save_pretrained(folder / "vae")
    return folder
