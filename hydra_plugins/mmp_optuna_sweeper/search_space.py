"""Search spaces written as Hydra sweep overrides, read with Hydra's override parser into Optuna's
distributions.

| written                                      | searched by Optuna as                                 |
|----------------------------------------------|-------------------------------------------------------|
| `a,b,c` or `choice(a,b,c)`                   | categorical over the values                           |
| `range(1,10)`, `range(0,100,10)`             | int over the values Hydra's grid would run (stop excluded); a float range is categorical over its values |
| `interval(0.1,1)`                            | float between the ends                                |
| `tag(log, interval(0.001,100))`              | float on a log scale (low end above 0)                |
| `tag(int, interval(1,100))`, `tag(int, log, ...)` | int between the ends (whole numbers)             |

Any other override (`recipe=model`, `mlflow.experiment=x`) is fixed: every trial gets it as written.
"""

# No `from __future__ import annotations`: Hydra runs this module before it is in sys.modules, where
# dataclasses would look string annotations up.

from dataclasses import dataclass, field
from typing import Any, Mapping

from mmp.errors import ConfigError, Problem

ALLOWED = ("a search is a,b,c or choice(a,b,c), range(start,stop[,step]), interval(low,high) with low < high, "
           "tag(log, interval(low,high)) with low > 0, or tag(int, interval(low,high)) with whole-number ends")
INTERVAL_TAGS = {"log", "int"}
CONFIGURED = "hydra.sweeper.params"


class _Unsearchable(Exception):
    """What is wrong with one sweep expression."""


@dataclass(frozen=True)
class Param:
    """One searched key: the override key as written (`+model.params.l1_ratio`), its expression, the
    Optuna distribution, and for a categorical one each choice as override text."""

    key: str
    expression: str
    distribution: Any
    texts: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Optuna's name for it: the key path (`model.params.l1_ratio`)."""
        return self.key.lstrip("+")

    def override(self, value: Any) -> str:
        """The override that gives a job this value."""
        from hydra.core.override_parser.types import Transformer

        if self.texts:  # the choice as the user wrote it ('a b' stays quoted, [1,2] stays a list)
            return f"{self.key}={self.texts[int(self.distribution.to_internal_repr(value))]}"
        return f"{self.key}={Transformer.str(value)}"

    def describe(self) -> str:
        """`float 0.001..100, log scale`, `categorical over l1, l2`."""
        d = self.distribution
        if self.texts:
            return "categorical over " + ", ".join(self.texts)
        kind = "int" if type(d).__name__ == "IntDistribution" else "float"
        step = f", step {d.step:g}" if d.step not in (None, 1) else ""
        return f"{kind} {d.low:g}..{d.high:g}{', log scale' if d.log else ''}{step}"


@dataclass
class SearchSpace:
    """The searched keys and the overrides every trial gets as they are."""

    params: dict[str, Param] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)

    @property
    def distributions(self) -> dict[str, Any]:
        return {p.name: p.distribution for p in self.params.values()}

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """A job's overrides for one trial's values."""
        return self.fixed + [p.override(values[p.name]) for p in self.params.values()]

    def summary(self) -> dict[str, dict[str, str]]:
        """Each searched key with its expression and what Optuna searches."""
        return {p.name: {"expression": p.expression, "distribution": p.describe()} for p in self.params.values()}


def read_search_space(configured: Mapping[str, Any], arguments: list[str], config_loader: Any = None) -> SearchSpace:
    """`hydra.sweeper.params` then the command line's overrides (which win for the same key); every
    problem is reported at once as a `ConfigError` naming the key and where it was written."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create(config_loader=config_loader)
    written = [(f"{k}={v}", CONFIGURED) for k, v in configured.items()]
    written += [(line, f"override '{line}'") for line in arguments]
    chosen: dict[str, tuple[Any, str]] = {}
    problems = []
    for line, origin in written:
        key, _, expression = line.partition("=")
        try:
            override = parser.parse_override(line)
        except HydraException as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            problems.append(Problem(key.lstrip("+~"), f"cannot read '{expression}' ({detail})", ALLOWED, origin))
            continue
        chosen.pop(override.key_or_group, None)  # a later one wins, and keeps the command line's order
        chosen[override.key_or_group] = (override, origin)

    space = SearchSpace()
    for name, (override, origin) in chosen.items():
        if not override.is_sweep_override():
            space.fixed.append(override.input_line)
            continue
        expression = override.input_line.partition("=")[2]
        try:
            distribution, texts = _distribution(override)
        except _Unsearchable as exc:
            problems.append(Problem(name, f"{expression}: {exc}", ALLOWED, origin))
            continue
        space.params[name] = Param(override.get_key_element(), expression, distribution, texts)
    if not problems and not space.params:
        problems.append(Problem(CONFIGURED, "nothing to search: no key has a sweep expression",
                                "give one, e.g. 'model.params.C=tag(log, interval(0.001, 100))'; " + ALLOWED))
    if problems:
        raise ConfigError(problems, source="search space")
    return space


def _distribution(override: Any) -> tuple[Any, tuple[str, ...]]:
    """Optuna's distribution for one sweep override, and the override text of each categorical choice."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
    from optuna.distributions import CategoricalDistribution, IntDistribution

    sweep = override.value()
    tags = set(sweep.tags or ())
    if isinstance(sweep, IntervalSweep):
        return _interval(sweep.start, sweep.end, tags), ()
    if tags:
        raise _Unsearchable(f"tag({', '.join(sorted(tags))}, ...) applies to interval(low,high) only")
    values = list(override.sweep_iterator())
    if not values:
        raise _Unsearchable("it holds no values (a range's stop is excluded: range(1,4) is 1, 2, 3)")
    if isinstance(sweep, RangeSweep) and all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step)):
        return IntDistribution(min(values), max(values), step=abs(sweep.step)), ()
    if not isinstance(sweep, (ChoiceSweep, RangeSweep)):
        raise _Unsearchable(f"{type(sweep).__name__} is not a search Optuna can run")
    texts: list[str] = []
    choices: list[Any] = []
    for value in values:
        text = Transformer.str(value)
        if text not in texts:  # Optuna's choices are plain values; a list or mapping is kept as its text
            texts.append(text)
            choices.append(Transformer.encode(value))
    return CategoricalDistribution(choices), tuple(texts)


def _interval(low: float, high: float, tags: set[str]) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution

    unknown = tags - INTERVAL_TAGS
    if unknown:
        raise _Unsearchable(f"unknown tag {', '.join(sorted(unknown))}; an interval takes tag(log, ...) and tag(int, ...)")
    if not low < high:
        raise _Unsearchable(f"the low end {low:g} is not below the high end {high:g}")
    log = "log" in tags
    if log and low <= 0:
        raise _Unsearchable(f"a log scale needs a low end above 0, got {low:g}")
    if "int" in tags:
        if not (float(low).is_integer() and float(high).is_integer()):
            raise _Unsearchable(f"tag(int, ...) needs whole-number ends, got {low:g} and {high:g}")
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(float(low), float(high), log=log)
