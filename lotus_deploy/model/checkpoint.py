"""[torch] Load a Lotus-D checkpoint: resolve the id or folder, check it is Lotus-D, load UNet and VAE
in float32, and embed the empty prompt once (the text encoder is freed right after).

The fused one-step module built from it is :mod:`lotus_deploy.model.fused`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import CheckpointError
from .builtin import BUILTIN_PREFIX, DEMO_CARD, builtin_names, builtin_path, is_builtin_folder

if TYPE_CHECKING:
    import torch

_COMPONENT_PATTERNS = ["model_index.json", "unet/*", "vae/*", "text_encoder/*", "tokenizer/*", "*.md", "LICENSE*"]


@dataclass
class LoadedCheckpoint:
    """The pieces of a checkpoint the fused module needs, and where they came from."""

    model_id: str
    folder: Path
    unet: Any
    vae: Any
    prompt_embeds: torch.Tensor
    licence: str | None
    config_hash: str
    notes: dict[str, Any] = field(default_factory=dict)


def repair_hint(folder: Path) -> str:
    """How to repair a broken checkpoint folder: a generated built-in one is deleted and rebuilt, a real one re-downloaded."""
    if is_builtin_folder(folder):
        return f"delete {folder}: the built-in model is generated again on next use"
    return "re-download the checkpoint"


def resolve_checkpoint(model: str, task: str | None = None) -> Path:
    """A local folder for ``model``: built-in name, existing folder, or cached/downloaded hub id.

    ``task`` picks the UNet of a built-in model that has one per task (``builtin:demo``)."""
    if model.startswith(BUILTIN_PREFIX):
        return builtin_path(model, task)
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{model} is a file, not a checkpoint folder", "pass the folder that holds unet/ and vae/")
        return path
    if model.count("/") != 1 or model.startswith((".", "/")):
        raise CheckpointError(
            f"{model!r} is neither an existing folder nor a Hugging Face id (org/name)",
            f"check the path, or use a hub id or one of {', '.join(builtin_names())}",
        )
    return _snapshot(model)


def _snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=_COMPONENT_PATTERNS))
    except (GatedRepoError, RepositoryNotFoundError) as exc:
        raise CheckpointError(f"{repo_id} is not a public model on the Hugging Face hub ({exc.__class__.__name__})", "check the id, or log in (hf auth login) for gated models") from None
    except LocalEntryNotFoundError:
        raise CheckpointError(
            f"{repo_id} is not in the local Hugging Face cache and the hub cannot be reached",
            f"download it on a connected machine (hf download {repo_id}) or use a local folder or {' / '.join(builtin_names())}",
        ) from None
    except OSError as exc:  # connection failures surface as OSError subclasses
        raise CheckpointError(
            f"could not fetch {repo_id} ({exc.__class__.__name__}) and it is not cached",
            f"check the network, or use a local folder or {' / '.join(builtin_names())}",
        ) from None


def _read_config(folder: Path, component: str) -> dict[str, Any]:
    path = folder / component / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{folder} is not a Lotus-D checkpoint: {component}/config.json is missing",
            "pass a diffusers-layout folder with unet/, vae/, text_encoder/ and tokenizer/",
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc.msg})", repair_hint(folder)) from None
    return data


def validate_lotus_configs(folder: Path) -> dict[str, dict[str, Any]]:
    """Check that the folder holds a Lotus-D (not Lotus-G, not plain SD) UNet and a KL VAE."""
    configs = {name: _read_config(folder, name) for name in ("unet", "vae")}
    for name in ("text_encoder", "tokenizer"):
        if not (folder / name).is_dir():
            raise CheckpointError(f"{folder} has no {name}/ folder", "Lotus-D needs it once at export to embed the empty prompt; use the full checkpoint")
    unet, vae = configs["unet"], configs["vae"]
    if unet.get("class_embed_type") != "projection" or unet.get("projection_class_embeddings_input_dim") != 4:
        raise CheckpointError(
            f"{folder}/unet is not a Lotus UNet (class_embed_type={unet.get('class_embed_type')!r}, projection input {unet.get('projection_class_embeddings_input_dim')!r})",
            "Lotus-D UNets have class_embed_type='projection' with input dim 4; check the checkpoint",
        )
    latent = vae.get("latent_channels", 4)
    if unet.get("in_channels") != latent:
        raise CheckpointError(
            f"{folder}/unet takes {unet.get('in_channels')} input channels, the VAE gives {latent}",
            "this looks like Lotus-G (noise-conditioned); only the deterministic Lotus-D is supported",
        )
    return configs


def _licence(folder: Path) -> str | None:
    readme = folder / "README.md"
    if readme.is_file():
        head = readme.read_text(errors="replace")[:4000]
        for line in head.splitlines():
            if line.strip().lower().startswith("license:"):
                return line.split(":", 1)[1].strip()
    if (folder / "LICENSE.txt").is_file():
        return (folder / "LICENSE.txt").read_text(errors="replace").splitlines()[0][:200]
    return None


def load_checkpoint(model: str, task: str | None = None) -> LoadedCheckpoint:
    """Load UNet and VAE in float32 and embed the empty prompt once (BOS+EOS, not padded to 77).

    The text encoder (a 23-layer CLIP, ~1.4 GB in a real checkpoint) is loaded, used and freed before the
    UNet and VAE load, so it never sits in memory beside them.
    """
    import gc

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    _silence_loading_bars()
    folder = resolve_checkpoint(model, task)
    configs = validate_lotus_configs(folder)
    try:
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", torch_dtype=torch.float32)
        ids = tokenizer("", padding="do_not_pad", return_tensors="pt").input_ids
        with torch.no_grad():
            prompt_embeds = text_encoder(ids)[0].float().clone()
        del text_encoder
        gc.collect()
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch.float32)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(f"could not load the checkpoint in {folder}: {first}", f"check that the weights files are complete; {repair_hint(folder)}") from None
    unet.eval()
    vae.eval()
    digest = hashlib.sha256(json.dumps(configs, sort_keys=True).encode()).hexdigest()
    licence = _licence(folder)
    return LoadedCheckpoint(
        model_id=model,
        folder=folder,
        unet=unet,
        vae=vae,
        prompt_embeds=prompt_embeds,
        licence=licence,
        config_hash=digest,
        notes={"prompt_tokens": int(ids.shape[1]), **card_notes(folder)},
    )


def card_notes(folder: Path) -> dict[str, Any]:
    """What a built-in checkpoint's card (``demo.json``) declares: its working resolution and how it was trained."""
    card = folder / DEMO_CARD
    if not card.is_file():
        return {}
    data = json.loads(card.read_text())
    return {"processing_res": data.get("processing_res"),
            "training": {key: data.get(key) for key in ("seed", "provenance", "held_out", "weights_sha256") if key in data}}


def _silence_loading_bars() -> None:
    import diffusers
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()


def weights_hash(folder: Path) -> str:
    """sha256 over the UNet and VAE weight files (names and contents), identifying the source."""
    from ..core.artifacts import sha256_file

    digest = hashlib.sha256()
    for component in ("unet", "vae"):
        for path in sorted((folder / component).glob("*")):
            if path.suffix in (".safetensors", ".bin", ".json"):
                digest.update(f"{component}/{path.name}:{sha256_file(path)}".encode())
    return digest.hexdigest()


def _safetensors_elements(path: Path) -> int:
    """Number of tensor elements in a safetensors file, from its header alone (no weights read)."""
    import struct

    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in entry["shape"]:
            count *= int(dim)
        total += count
    return total


def checkpoint_weight_bytes(folder: Path) -> int:
    """Bytes of the UNet and VAE weights once loaded in float32 (what the export holds and writes).

    Counted from the safetensors headers of the files diffusers loads (the non-variant ones); a
    checkpoint with only ``.bin`` weights is counted by file size.
    """
    total = 0
    for component in ("unet", "vae"):
        files = sorted(p for p in (folder / component).glob("*.safetensors") if ".fp16." not in p.name and not p.name.endswith(".fp16.safetensors"))
        if files:
            total += sum(_safetensors_elements(p) for p in files) * 4
        else:
            total += sum(p.stat().st_size for p in (folder / component).glob("*.bin"))
    return total
