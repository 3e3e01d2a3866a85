"""What `mmp list` prints: models, preprocessors, metrics, recipes and envs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator


def _table(rows: list[tuple[str, ...]]) -> Iterator[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        yield "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()


def models() -> Iterator[str]:
    from mmp.estimators import catalogue

    yield from _table([("CLASS PATH", "KIND", "SOURCE")] + catalogue())


def preprocessors() -> Iterator[str]:
    from mmp.preprocess import STEPS

    rows = [("TYPE", "DEFAULT COLUMNS", "CLASS", "WHAT IT DOES")]
    rows += [(name, s.default_columns, s.class_path, s.summary) for name, s in STEPS.items()]
    yield from _table(rows)


def metrics() -> Iterator[str]:
    from mmp.metrics import DEFAULT_METRICS, METRICS

    rows = [("TASK", "METRIC", "BETTER", "DEFAULT", "WHAT IT MEASURES")]
    for task, by_name in METRICS.items():
        for name, metric in by_name.items():
            rows.append((task, name, "higher" if metric.greater_is_better else "lower",
                         "yes" if name in DEFAULT_METRICS[task] else "", metric.summary))
    yield from _table(rows)


def _yaml_files(folder: Path) -> list[Path]:
    """YAML files below `folder`, skipping hidden entries (a ConfigMap's ..data and ..2024_... dirs)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in sorted(files) if f.endswith((".yaml", ".yml")) and not f.startswith(".")]
    return found


def recipes() -> Iterator[str]:
    import yaml

    folder = Path(os.environ.get("MMP_RECIPES_DIR") or "recipes")
    rows = [("RECIPE", "TASK", "MODEL")]
    for path in _yaml_files(folder):
        try:
            recipe = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            recipe = {"task": "(unreadable yaml)"}
        model = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
        option = path.relative_to(folder).with_suffix("").as_posix()
        rows.append((option, str(recipe.get("task", "?")), str(model.get("class_path", "?"))))
    yield from _table(rows)


def envs() -> Iterator[str]:
    folder = Path(os.environ.get("MMP_CONF_DIR") or "conf") / "env"
    for path in _yaml_files(folder):
        yield path.relative_to(folder).with_suffix("").as_posix()


LISTINGS: dict[str, Callable[[], Iterator[str]]] = {
    "models": models, "preprocessors": preprocessors, "metrics": metrics, "recipes": recipes, "envs": envs,
}
