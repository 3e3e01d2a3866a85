"""The logged model's pip requirements, written out explicitly (MLflow's inference is slow and wrong)."""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
from typing import Any, Iterator

BASE = ("mlflow", "scikit-learn", "pandas", "numpy", "cloudpickle")
# Module -> the distributions that may provide it, first installed wins (xgboost-cpu is mmp's
# ml-extras choice). Looking these up directly avoids scanning every installed package (0.8 s).
KNOWN = {"xgboost": ("xgboost-cpu", "xgboost"), "lightgbm": ("lightgbm",), "torch": ("torch",),
         "catboost": ("catboost",), "econml": ("econml",), "statsforecast": ("statsforecast",),
         "mlforecast": ("mlforecast",), "coreforecast": ("coreforecast",), "utilsforecast": ("utilsforecast",)}
# Libraries a forecaster needs at load time besides its own top module.
DEPENDS = {"statsforecast": ("coreforecast", "utilsforecast"), "mlforecast": ("coreforecast", "utilsforecast")}


def _pin(distribution: str) -> str | None:
    try:
        # A local label (torch 2.13.0+cpu) names a build no index serves: pin the release.
        return f"{distribution}=={metadata.version(distribution).split('+')[0]}"
    except metadata.PackageNotFoundError:
        return None


def pip_requirements(estimators: list[Any]) -> list[str]:
    """Pinned requirements for the packages these fitted estimators (a pipeline's steps and the
    estimators nested in them) need at prediction time."""
    tops = {type(estimator).__module__.split(".")[0] for estimator in estimators}
    if any(type(estimator).__module__.startswith("mmp.models.mlp") for estimator in estimators):
        tops.add("torch")
    tops |= {extra for top in list(tops) for extra in DEPENDS.get(top, ())}
    pins = [pin for pin in (_pin(d) for d in BASE) if pin]
    for top in sorted(tops - {"sklearn", "mmp"}):
        candidates = KNOWN.get(top) or tuple(metadata.packages_distributions().get(top, [top]))
        pin = next((p for p in (_pin(d) for d in candidates) if p), None)
        if pin:
            pins.append(pin)
    return pins


@contextlib.contextmanager
def pins_trusted() -> Iterator[None]:
    """While saving (and, to check its input example, reloading) a model with `pip_requirements()`'s
    pins, skip MLflow's check that the environment satisfies them. The pins are the installed versions,
    read one by one, so the check (which first maps every installed distribution to its modules: ~0.6 s
    of a 4 s `mmp train`) can only agree. Where MLflow no longer has that check, this does nothing."""
    import mlflow.pyfunc
    from mlflow.utils import environment

    patched = [(module, module.warn_dependency_requirement_mismatches) for module in (environment, mlflow.pyfunc)
               if hasattr(module, "warn_dependency_requirement_mismatches")]
    for module, _ in patched:
        module.warn_dependency_requirement_mismatches = _agree
    try:
        yield
    finally:
        for module, check in patched:
            module.warn_dependency_requirement_mismatches = check


def _agree(requirements: list[str]) -> None:
    """MLflow's mismatch check, for pins known to be the installed versions: nothing to warn about."""
