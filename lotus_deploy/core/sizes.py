"""The one size rule: graph sizes are positive multiples of 64 (the VAE downsamples 8x, the UNet 8x more)."""

from __future__ import annotations

from .errors import ConfigError

SPATIAL_MULTIPLE = 64


def round_up(size: int, multiple: int = SPATIAL_MULTIPLE) -> int:
    """Smallest multiple of ``multiple`` that is >= size."""
    return -(-int(size) // multiple) * multiple


def is_spatial_size(value: int, multiple: int = SPATIAL_MULTIPLE) -> bool:
    """True for a positive multiple of ``multiple``."""
    return value > 0 and value % multiple == 0


def check_size_flag(flag: str, value: int | None) -> None:
    """One-line ConfigError unless ``value`` (when given) is a positive multiple of 64; the fix names the nearest one."""
    if value is not None and not is_spatial_size(value):
        raise ConfigError(f"{flag} {value} is not a positive multiple of {SPATIAL_MULTIPLE}", f"use {round_up(max(value, 1))}")
