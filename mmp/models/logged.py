"""The model a run logged: find it (run id, runs:/, models:/name@alias, models:/name/3), load it
once, and read its data interface (features, entity columns, task, classes) from its metadata.

`load` goes through MLflow (any store, any URI). `load_folder` reads a model folder already on
this disk (MLmodel + the pickled TabularModel) without importing MLflow: the same objects
`mlflow.pyfunc.load_model` would unpickle, ~2-3 s sooner; the MLflow pyfunc is then loaded only
if something asks for it (`LoggedModel.pyfunc`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mmp.errors import UserError

RUN_ID_VAR = "MODEL_RUN_ID"
MODEL_NAME = "model"  # the logged model's name inside a run: runs:/<run_id>/model
DRIFT_ARTIFACT = "drift_profile"  # the drift profile's name among the pyfunc's artifacts


def model_uri(run_id: str | None, uri: str | None) -> str:
    """`--model-uri`, else `runs:/<--run-id or $MODEL_RUN_ID>/model`; neither is a user error."""
    if run_id and uri:
        raise UserError("give either --run-id or --model-uri, not both")
    if uri:
        if not uri.startswith(("runs:/", "models:/", "file:", "/", ".", "s3://", "gs://", "mlflow-artifacts:")):
            raise UserError(f"--model-uri: '{uri}' is not a model URI; use runs:/<run_id>/model, "
                            "models:/<name>@<alias> or models:/<name>/<version>")
        return uri
    run_id = run_id or os.environ.get(RUN_ID_VAR)
    if not run_id:
        raise UserError(f"no model given: pass --run-id ID or --model-uri URI, or set {RUN_ID_VAR}")
    return f"runs:/{run_id}/{MODEL_NAME}"


@dataclass
class LoggedModel:
    """A loaded pyfunc and the columns it reads."""

    uri: str
    pyfunc: Any
    features: list[str]
    numeric: list[str]
    entity_columns: list[str]
    task: str | None
    classes: list | None
    info: dict[str, Any]
    folder: "ModelFolder | None" = None  # set by `load_folder`: the files, read without MLflow

    @property
    def run_id(self) -> str | None:
        return self.folder.run_id if self.folder is not None else self.pyfunc.metadata.run_id

    @property
    def drift_profile(self) -> dict[str, Any] | None:
        """The training split's drift profile (mmp.models.drift) logged with the model; None for a
        model logged without one (monitoring off, a timeseries or causal model, an older mmp)."""
        if "_drift_profile" not in self.__dict__:
            profile = None
            if self.info.get("drift_profile"):
                profile = _read_json(self.folder.profile) if self.folder is not None else _read_profile(self.pyfunc)
            self.__dict__["_drift_profile"] = profile
        return self.__dict__["_drift_profile"]

    @property
    def tabular(self) -> Any:
        """mmp's own model object (a TabularModel or kin, with `predict_frame`), or None for a pyfunc
        logged by something else."""
        if self.folder is not None:
            return self.folder.model
        inner = getattr(_python_model(self.pyfunc), "model", None)
        return inner if inner is not None and hasattr(inner, "predict_frame") else None

    def predict(self, frame: Any) -> Any:
        """Prediction columns for a pandas frame: mmp's model directly, any other pyfunc through MLflow."""
        inner = self.tabular
        if inner is not None:
            return inner.predict_frame(frame)
        import pandas as pd

        out = self.pyfunc.predict(frame[self.features] if self.features else frame)
        return out if isinstance(out, pd.DataFrame) else pd.DataFrame({"prediction": list(out)}, index=frame.index)


def _python_model(pyfunc: Any) -> Any:
    try:
        return pyfunc.unwrap_python_model()
    except Exception:  # not a python_model flavor: an sklearn/xgboost pyfunc logged elsewhere
        return None


def _read_profile(pyfunc: Any) -> dict[str, Any] | None:
    """The drift profile from the loaded model's local copy of its artifacts."""
    context = getattr(getattr(pyfunc, "_model_impl", None), "context", None)
    return _read_json((getattr(context, "artifacts", None) or {}).get(DRIFT_ARTIFACT))


def _read_json(path: str | None) -> dict[str, Any] | None:
    import json

    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def load(uri: str) -> LoggedModel:
    """Load the model at `uri`; an unknown run, model or version is a UserError (exit 2)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        pyfunc = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND") or "not found" in str(exc).lower():
            raise UserError(f"no such model: {uri} ({_first_line(exc)}) at tracking URI {mlflow.get_tracking_uri()}") from exc
        raise
    except OSError as exc:
        raise UserError(f"no such model: {uri} ({_first_line(exc)})") from exc
    meta = (pyfunc.metadata.metadata or {}).get("mmp") or {}
    inputs = pyfunc.metadata.get_input_schema()
    features = meta.get("features") or (inputs.input_names() if inputs is not None else [])
    return LoggedModel(
        uri=uri, pyfunc=pyfunc, features=list(features), numeric=list(meta.get("numeric") or []),
        entity_columns=list(meta.get("entity_columns") or []), task=meta.get("task"), classes=meta.get("classes"),
        info=meta,
    )


@dataclass
class ModelFolder:
    """A logged model's folder on this disk, read without MLflow."""

    path: str
    run_id: str | None
    model: Any  # the unpickled TabularModel (or kin)
    profile: str | None  # the drift profile's file, when the model carries one


class _PyfuncOnDemand:
    """`mlflow.pyfunc.load_model(folder)`, done the first time an attribute is asked for."""

    def __init__(self, path: str):
        self._path, self._loaded = path, None

    def __getattr__(self, name: str) -> Any:
        if self._loaded is None:
            import mlflow

            self._loaded = mlflow.pyfunc.load_model(self._path)
        return getattr(self._loaded, name)


def load_folder(uri: str, path: str) -> LoggedModel | None:
    """The model in the local folder `path` (what `uri` resolved to) when mmp logged it as a pyfunc
    with no code of its own to import (`code: null`); None for any other model, which `load` reads."""
    import yaml

    from mmp.models.tabular import MODEL_ARTIFACT, load_from_mlflow_dir

    mlmodel = os.path.join(path, "MLmodel")
    if not os.path.isfile(mlmodel):
        return None
    with open(mlmodel) as f:
        meta = yaml.safe_load(f) or {}
    flavor = (meta.get("flavors") or {}).get("python_function") or {}
    artifacts = flavor.get("artifacts") or {}
    mmp = (meta.get("metadata") or {}).get("mmp") or {}
    pickled = (artifacts.get(MODEL_ARTIFACT) or {}).get("path")
    if (flavor.get("loader_module") != "mlflow.pyfunc.model" or flavor.get("code") or not pickled or not mmp
            or not os.path.isfile(os.path.join(path, pickled))):
        return None
    model = load_from_mlflow_dir(path, meta)
    if not hasattr(model, "predict_frame"):
        return None
    profile = (artifacts.get(DRIFT_ARTIFACT) or {}).get("path")
    features = mmp.get("features") or [c["name"] for c in _signature_inputs(meta)]
    return LoggedModel(
        uri=uri, pyfunc=_PyfuncOnDemand(path), features=list(features), numeric=list(mmp.get("numeric") or []),
        entity_columns=list(mmp.get("entity_columns") or []), task=mmp.get("task"), classes=mmp.get("classes"),
        info=mmp, folder=ModelFolder(path, meta.get("run_id"), model, os.path.join(path, profile) if profile else None),
    )


def _signature_inputs(meta: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    inputs = (meta.get("signature") or {}).get("inputs")
    try:
        return [c for c in json.loads(inputs) if "name" in c] if inputs else []
    except (TypeError, ValueError):
        return []


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
