"""Shared fixtures: a throwaway copy of the repository's own mmp project, and ways to run `mmp`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A copy of conf/, recipes/ and data/ in a temporary folder, made the working directory."""
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, tmp_path / name, symlinks=True)
    monkeypatch.chdir(tmp_path)
    for var in ("MMP_CONF_DIR", "MMP_RECIPES_DIR", "RECIPE_PATH", "CONFIG_PATH", "MLFLOW_TRACKING_URI", "MODEL_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def mmp(capsys):
    """Run `mmp ARGS` in this process (fast); returns exit code, stdout and stderr."""
    from mmp.cli import run

    def call(*args: str) -> Result:
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def run_mmp(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    """Run `mmp ARGS` as a separate process, as a user would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "mmp", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def configmap_conf(tmp_path) -> Path:
    """conf/ laid out as Kubernetes mounts a ConfigMap: every file a symlink into ..data -> ..<timestamp>/."""
    mount = tmp_path / "configmap" / "conf"
    write_configmap(mount, "..2026_11_26_10_00_00.000000001", {
        "config.yaml": (REPO / "conf" / "config.yaml").read_text(),
        "env/prod.yaml": (REPO / "conf" / "env" / "prod.yaml").read_text(),
        "env/local.yaml": (REPO / "conf" / "env" / "local.yaml").read_text(),
    })
    return mount


def write_configmap(mount: Path, version: str, files: dict[str, str]) -> None:
    """Write (or atomically swap in) one ConfigMap version the way the kubelet does."""
    version_dir = mount / version
    for rel, text in files.items():
        (version_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (version_dir / rel).write_text(text)
    tmp_link = mount / "..data_tmp"
    tmp_link.symlink_to(version)
    os.replace(tmp_link, mount / "..data")
    for top in {rel.split("/", 1)[0] for rel in files}:
        link = mount / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
