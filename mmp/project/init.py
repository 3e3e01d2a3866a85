"""`mmp init NAME`: write a new project that trains as-is: conf/, recipes/ (one example per task),
data/ (small real datasets: scikit-learn's written at init, the airline series and IHDP shipped in
the template), Dockerfile, .dockerignore, pyproject.toml, README.md."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

from mmp import __version__
from mmp.errors import UserError

# Template file -> where it goes in the project (names setuptools would not package as they are).
RENAMED = {"dockerignore": ".dockerignore"}
FILLED = ("README.md", "pyproject.toml", "Dockerfile")


def init_project(target: str | Path, force: bool = False) -> list[Path]:
    """Write the project into `target`; refuse a non-empty folder unless `force`. Returns the files."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise UserError(f"init: {target} exists and is not a folder")
    if target.exists() and any(target.iterdir()) and not force:
        raise UserError(f"init: {target} is not empty; pick a new folder or pass --force to write into it")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", target.resolve().name).strip("-") or "mmp-project"
    written = []
    template = resources.files("mmp.project") / "template"
    with resources.as_file(template) as source:
        for path in sorted(p for p in Path(source).rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            rel = path.relative_to(source)
            dest = target / RENAMED.get(rel.as_posix(), rel.as_posix())
            dest.parent.mkdir(parents=True, exist_ok=True)
            if rel.as_posix() in FILLED:
                dest.write_text(path.read_text().replace("{name}", name).replace("{mmp_version}", __version__))
            else:
                shutil.copyfile(path, dest)
            written.append(dest)
    from mmp.project.sample_data import write_sample_data

    written += write_sample_data(target / "data")
    return written


def init_command(name: str, overrides: list[str], force: bool = False) -> str:
    """`mmp init NAME`: write the project; returns the line that tells the user what next."""
    if overrides:
        raise UserError(f"init takes no overrides, got: {' '.join(overrides)}")
    files = init_project(name, force=force)
    return f"wrote {len(files)} files into {name}/; next: cd {name} && mmp train recipe=model"
