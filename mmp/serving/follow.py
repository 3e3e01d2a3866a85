"""Following `models:/NAME@ALIAS`: a worker re-resolves the alias every `serving.follow_alias_s`
seconds and, when it points at a new version, downloads and loads that version beside the one
it serves, then swaps (`ServingState.swap`): no request is dropped and no rollout is needed.

Whatever goes wrong (MLflow unreachable, a version that fails to download, load or predict)
keeps the current model serving; the reason is logged once and shown on /ready under `follow`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time

from mmp.serving.state import ServingState, model_schema

log = logging.getLogger("mmp.serve")


def start_follower(state: ServingState, interval_s: float) -> "AliasFollower | None":
    """Start following the served alias in a daemon thread; None when there is nothing to follow."""
    name, alias = state.info.get("registered_model"), state.info.get("alias")
    if not interval_s or not name or not alias:
        return None
    # An unreachable MLflow should cost one interval, not MLflow's minutes of retries: the next check retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(5, int(interval_s))))
    follower = AliasFollower(state, name, alias, interval_s)
    threading.Thread(target=follower.run, name="mmp-follow-alias", daemon=True).start()
    return follower


class AliasFollower:
    """Re-resolves `NAME@ALIAS` on an interval and swaps the worker's model to each new version."""

    def __init__(self, state: ServingState, name: str, alias: str, interval_s: float):
        self.state, self.name, self.alias, self.interval_s = state, name, alias, interval_s
        self.failed: str | None = None  # a version that failed to load: not retried until the alias moves
        self.downloaded: str | None = None  # the folder of the version served, when the follower fetched it
        state.follow = {"alias": f"{name}@{alias}", "version": state.info.get("model_version"),
                        "every_s": interval_s, "last_check": None, "error": None}

    def run(self) -> None:
        self.state.loaded.wait()
        while True:
            time.sleep(self.interval_s)
            self.check()

    def check(self) -> bool:
        """One look at the alias; True when the worker now serves a new version."""
        follow = self.state.follow
        version = None
        try:
            version = self._resolve()
            if version == follow["version"]:  # nothing new (or back to the served version after a failure)
                follow["error"] = None
                return False
            if version == self.failed:
                return False
            self._swap_to(version)
        except Exception as exc:  # keep serving what is served; say why, once per new reason
            reason = (str(exc).strip().splitlines() or [""])[0]
            error = f"{'version ' + version + ': ' if version else ''}{type(exc).__name__}: {reason}"
            if error != follow.get("error"):
                log.warning("following %s@%s: still serving version %s: %s", self.name, self.alias,
                            follow["version"], error)
            follow["error"] = error
            return False
        finally:
            follow["last_check"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        follow["error"] = None
        return True

    def _resolve(self) -> str:
        import mlflow

        return str(mlflow.MlflowClient().get_model_version_by_alias(self.name, self.alias).version)

    def _swap_to(self, version: str) -> None:
        import mlflow

        from mmp.serving.serve_api import resolve

        folder = tempfile.mkdtemp(prefix=f"mmp-{self.name}-v{version}-")
        try:
            uri = f"models:/{self.name}/{version}"
            model_dir = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
            info = {**resolve(uri), "model_uri": self.state.model_uri, "alias": self.alias,
                    "environment": self.state.info.get("environment")}
            try:
                self.state.swap(model_dir, info, model_schema(model_dir))
            except Exception:
                self.failed = version  # the version itself is broken: retried only when the alias moves on
                raise
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        previous, self.downloaded = self.downloaded, folder
        if previous:
            shutil.rmtree(previous, ignore_errors=True)
        log.info("following %s@%s: now serving version %s (was %s)", self.name, self.alias, version,
                 self.state.follow["version"])
        self.state.follow["version"] = version
        self.failed = None
