"""An env without a recipe (batch inference, serving, build): composed, checked, its secrets learned."""

from __future__ import annotations

from typing import Any

from mmp.config.checks import schema_problems
from mmp.config.monitoring_checks import monitoring_problems
from mmp.errors import ConfigError


def check_env(request: Any, cfg: Any):
    """Inside a Hydra job with no recipe: the checked env spec (where things are, how they run)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from mmp.config.spec import ENV_KEYS, EnvSpec
    from mmp.masking import masked_container

    masked_container(cfg)  # learn this env's secrets, so nothing printed later shows them
    choices = dict(HydraConfig.get().runtime.choices)
    config = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k in ENV_KEYS}
    origin = lambda path: request.origin(path, choices)  # noqa: E731
    problems = schema_problems(config, origin, spec=EnvSpec) + monitoring_problems(config, origin)
    if problems:
        raise ConfigError(problems)
    return EnvSpec.model_validate(config)


def compose_env(request: Any, prog: str):
    """Compose an env-only request (batch inference, serving) and return its checked `EnvSpec`."""
    from mmp.config.compose import run

    return run(request, lambda cfg: check_env(request, cfg), prog=prog)
