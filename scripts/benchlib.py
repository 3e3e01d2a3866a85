"""What the benchmark scripts share: a throwaway copy of the repository's project."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The tuning benchmarks' search space over HistGradientBoostingClassifier (a recipe's tune.params).
HGB_SEARCH_SPACE = """\
    learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
    max_leaf_nodes: {type: int, low: 4, high: 64}
    min_samples_leaf: {type: int, low: 5, high: 60}
    l2_regularization: {type: float, low: 0.000001, high: 10.0, log: true}
"""


def copy_project(dest: Path) -> Path:
    """conf/, recipes/ and data/ of this repository copied into `dest` (a working mmp project)."""
    for name in ("conf", "recipes", "data"):
        shutil.copytree(REPO / name, dest / name)
    return dest


def import_seconds(module: str = "mlflow", repeats: int = 3) -> float:
    """A machine-speed reference: the median seconds a fresh Python takes to `import module`."""
    import statistics
    import subprocess
    import sys
    import time

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wait_ready(url: str, proc, timeout: float = 180, poll_s: float = 0.05) -> float:
    """Seconds until `url` answers 200 (counted from this call), polling every `poll_s`; exits the
    benchmark when `proc` dies first or the time runs out."""
    import time
    import urllib.request

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{' '.join(map(str, proc.args))} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(poll_s)
    raise SystemExit(f"{url} never answered 200")
