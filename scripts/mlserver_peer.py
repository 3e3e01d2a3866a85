"""MLServer as a serving peer for bench_serve.py: MLServer 1.7.x with its MLflow runtime, in a virtual
environment of its own (its pins conflict with mmp's), serving the same logged MLflow model over the
V2 protocol with adaptive batching (max_batch_size 64, max_batch_time 0.01 s), one process.

Two snags of MLServer 1.7.1 are worked around here: its V2 encoder fails on pandas-3 text columns
(`KeyError: 'O'`), so a small runtime subclass casts text outputs to object dtype; and
`parallel_workers: 1` dies at start under uvloop 0.23, so the model runs in the server process
(`parallel_workers: 0`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "1.7.1"

RUNTIME = '''
"""mlserver_mlflow's runtime, its text outputs cast to object dtype for MLServer 1.7.1's V2 encoder."""
from mlserver_mlflow import MLflowRuntime, TensorDictCodec


class Runtime(MLflowRuntime):
    async def predict(self, payload):
        output = self._model.predict(self.decode_request(payload))
        if hasattr(output, "dtypes"):
            output = output.astype({c: object for c, t in output.dtypes.items() if t.kind not in "biufcM"})
        return self.encode_response(output, default_codec=TensorDictCodec)
'''


def ensure_venv(venv: Path, model_dir: Path) -> Path | None:
    """The `mlserver` executable of `venv`, made there on first use (MLServer, its MLflow runtime and
    the model's own requirements); None, with a message, when it cannot be made."""
    mlserver = venv / "bin" / "mlserver"
    if mlserver.exists():
        return mlserver
    python = shutil.which("python3.11") or sys.executable
    print(f"MLServer: creating {venv} (python3.11 -m venv; pip install mlserver=={VERSION} "
          f"mlserver-mlflow=={VERSION} and the model's requirements) ...", flush=True)
    try:
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        f"mlserver=={VERSION}", f"mlserver-mlflow=={VERSION}", "-r", str(model_dir / "requirements.txt")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"MLServer: skipped, {venv} could not be made: {getattr(exc, 'stderr', None) or exc}"[:2000])
        return None
    return mlserver


def write_settings(folder: Path, model_dir: Path, name: str, ports: tuple[int, int, int]) -> Path:
    """MLServer's settings.json, the model's model-settings.json and the runtime module, in `folder`."""
    http, grpc, metrics = ports
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps({
        "http_port": http, "grpc_port": grpc, "metrics_port": metrics, "host": "127.0.0.1",
        "parallel_workers": 0, "debug": False}))
    (folder / name / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mmp_bench_runtime.Runtime", "max_batch_size": 64, "max_batch_time": 0.01,
        "parameters": {"uri": str(model_dir)}}))
    (folder / "mmp_bench_runtime.py").write_text(RUNTIME)
    return folder


def v2_body(frame) -> bytes:
    """A V2 request for MLServer's pandas codec: one input per column, shape [n, 1]."""
    kinds = {"f": "FP64", "i": "INT64", "b": "BOOL"}
    inputs = [{"name": c, "shape": [len(frame), 1], "datatype": kinds.get(frame[c].dtype.kind, "BYTES"),
               "data": frame[c].tolist()} for c in frame.columns]
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()
