"""What the benchmark scripts share: a throwaway copy of the repository's project."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_project(dest: Path) -> Path:
    """conf/, recipes/ and data/ of this repository copied into `dest` (a working mmp project)."""
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, dest / name)
    return dest
