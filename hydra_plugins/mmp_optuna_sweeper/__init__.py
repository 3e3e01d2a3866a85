"""mmp's Optuna sweeper: the `optuna` option of Hydra's `hydra/sweeper` group, on Optuna 5.

    mmp train -m recipe=model hydra/sweeper=optuna hydra.sweeper.n_trials=20 \\
        'model.params.C=tag(log, interval(0.001, 100))'

hydra-optuna-sweeper 1.3 (the latest release) requires optuna<3, and mmp needs Optuna 5 for its
recipe-level tuning, so mmp ships this sweeper. Its settings follow hydra-optuna-sweeper's, so
that plugin's docs carry over: `n_trials`, `n_jobs` (trials per batch handed to Hydra's
launcher), `direction` (null: from the recipe's primary metric), `study_name`, `storage` (an
Optuna RDB URL), `sampler` (`hydra/sweeper/sampler=tpe|random`, `hydra.sweeper.sampler.seed`)
and `params` (key -> sweep expression, as on the command line; see `search_space`).

Only this module's config classes load when Hydra scans its plugins; Optuna is imported when a
sweep starts.
"""

# No `from __future__ import annotations`: Hydra runs this module before it is in sys.modules, where
# dataclasses would look string annotations up.

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConf:
    """Optuna's TPESampler (the default)."""

    name: str = "tpe"
    seed: Optional[int] = None  # None: the recipe's data.split.seed, so a sweep repeats itself
    n_startup_trials: int = 10
    multivariate: bool = False


@dataclass
class RandomSamplerConf:
    """Optuna's RandomSampler."""

    name: str = "random"
    seed: Optional[int] = None  # None: the recipe's data.split.seed


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.mmp_optuna_sweeper.sweeper.OptunaSweeper"
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])

    sampler: Any = MISSING
    direction: Optional[str] = None  # maximize | minimize; None: from the recipe's primary metric
    storage: Optional[str] = None  # an Optuna RDB URL (sqlite:///optuna.db, ...); None: in memory
    study_name: Optional[str] = None  # None: Optuna makes one up
    n_trials: int = 20
    n_jobs: int = 1  # trials per batch handed to the launcher (Hydra's basic launcher runs them in turn)
    params: Optional[Dict[str, str]] = None  # key -> sweep expression; the command line's win


_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="mmp")
_store.store(group="hydra/sweeper/sampler", name="tpe", node=TPESamplerConf, provider="mmp")
_store.store(group="hydra/sweeper/sampler", name="random", node=RandomSamplerConf, provider="mmp")
