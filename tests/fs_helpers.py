"""Filesystem helpers for the data-safety tests: snapshots of a tree, and read-only folders even as root."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` (relative) → sha256 of its bytes, or "<dir>"."""
    out: dict[str, str] = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder).as_posix()
        out[rel] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def make_messy_tree(folder: Path) -> dict[str, str]:
    """A folder that is not an artifact: a file and a subfolder with a file; returns its snapshot."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "sub" / "00.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return snapshot(folder)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """Make ``folder`` unwritable for this process: chmod for a normal user, ``chattr +i`` for root.

    Skips the test where neither can take effect (root on a filesystem without the immutable flag).
    """
    folder = Path(folder)
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root and the immutable flag (chattr +i) is unavailable here")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def run_cli(*argv: str, cwd: Path | None = None, umask: int | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lotus_deploy.cli.<module>`` style entry points in a fresh process."""
    module, *args = argv
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")

    def set_umask() -> None:
        if umask is not None:
            os.umask(umask)

    return subprocess.run([sys.executable, "-m", f"lotus_deploy.cli.{module}", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=set_umask)
