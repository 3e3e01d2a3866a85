"""`mmp build`: a Bento holding the run's model, mmp's service code and pinned requirements, for
teams that ship Bentos (`bentoml containerize` turns it into an image)."""

from __future__ import annotations

import os
import time
from typing import Any

from mmp.config.spec import EnvSpec
from mmp.serving.serve_api import SERVICE, prepare, say


def build(env: EnvSpec, uri: str) -> str:
    """A Bento holding the model, mmp's service code and its requirements (`bentoml build`); returns its tag."""
    import shutil
    import tempfile
    from pathlib import Path

    import bentoml
    from bentoml._internal.bento.build_config import BentoEnvSchema  # what `envs:` in a bentofile becomes

    import mmp

    tag, details = prepare(env, uri, total=3)
    started = time.perf_counter()
    model = bentoml.models.get(tag)
    requirements = (Path(model.path_of("mlflow_model")) / "requirements.txt").read_text().split()
    requirements += [f"bentoml=={bentoml.__version__}", "fastapi", "pyyaml"]
    settings, monitoring = env.serving.model_dump_json(), env.monitoring.model_dump_json()
    # the service module reads them on import
    os.environ.update(MMP_MODEL_TAG=tag, MMP_SERVING=settings, MMP_MONITORING=monitoring)
    with tempfile.TemporaryDirectory() as context:
        shutil.copytree(Path(mmp.__file__).parent, Path(context) / "mmp",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        bento = bentoml.bentos.build(
            SERVICE, name=tag.split(":")[0], build_ctx=context, include=["mmp/**/*.py"],
            labels={"run_id": str(details.get("run_id") or ""), "source": "mmp"},
            description=f"mmp model {details.get('model_uri')} (recipe {details.get('recipe')})",
            python={"packages": requirements}, models=[tag],
            envs=[BentoEnvSchema(name="MMP_MODEL_TAG", value=tag), BentoEnvSchema(name="MMP_SERVING", value=settings),
                  BentoEnvSchema(name="MMP_MONITORING", value=monitoring),
                  BentoEnvSchema(name="BENTOML_DO_NOT_TRACK", value="true")],
        )
    say(3, 3, f"Bento {bento.tag} built (serve: MMP_MODEL_TAG={tag} bentoml serve {bento.tag}; "
               f"image: bentoml containerize {bento.tag})", started)
    return str(bento.tag)


def build_command(request: Any, uri: str) -> str:
    """`mmp build`: compose the env, then build the Bento; returns its tag."""
    from mmp.config.env import compose_env

    return build(compose_env(request, prog="mmp build"), uri)
