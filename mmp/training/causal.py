"""The stages of a causal (uplift) pipeline: load -> split -> preprocess -> fit -> evaluate -> log.

Load and split check the treatment (0/1 or several arms, the control known, every arm in every split)
before any MLflow run exists; the split is stratified by treatment so every split keeps each arm's
share. The fit stage builds the EconML learner from the recipe (base learners given as `{class_path,
params}` mappings, mmp's defaults where left out) and fits it on the preprocessed train rows, the arms
coded 0 (control), 1, 2, ... so the control is EconML's reference; evaluation is `mmp.training.uplift`'s
(AIPW ATE with its interval, AUUC, Qini, effect by decile; per arm when there are several).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

from mmp.config.causal_checks import BASE_ROLES, DEFAULT_BASE, FIXED_PARAMS, MIN_ARM_ROWS, is_base_spec
from mmp.config.spec import RunSpec
from mmp.errors import ConfigError, Problem
from mmp.training.log import Log, log_pyfunc, log_record
from mmp.training.pipeline import TrainState
from mmp.training.stages import Load, Preprocess, Split

SCORED = ("validation", "test")  # the AIPW nuisances learn from train, so train itself is not scored


def causal_stages(spec: RunSpec, pipeline: Any) -> list:
    """The stage objects `mmp compile` prints and `mmp train` runs for a causal recipe."""
    return [CausalLoad(spec), CausalSplit(spec), CausalPreprocess(spec), CausalFit(spec),
            CausalEvaluate(spec, pipeline.metrics, pipeline.primary_metric),
            CausalLog(spec, pipeline.tracking_uri, pipeline.experiment)]


@dataclass
class CausalLoad(Load):
    """Load, then check the treatment (two arms or more, the control among them) and the outcome (numeric)."""

    def describe(self) -> str:
        data = self.spec.data
        arms = "0 = control, 1 = treated, or several arms" if data.control is None else f"control {data.control!r}"
        return f"{super().describe()}; treatment {data.treatment} ({arms})"

    def run(self, state: TrainState) -> str:
        import polars as pl

        from mmp.config.causal_checks import treatment_arms
        from mmp.masking import scrub

        detail = super().run(state)
        data, frame = self.spec.data, state.frame
        arms, problems = treatment_arms(self.spec, frame, state.pipeline.origin)
        if problems:
            raise ConfigError(problems, f"data at {scrub(data.source or '')}")
        missing = frame[data.treatment].null_count()
        if missing:
            state.pipeline.progress.note(f"dropped {missing} rows with no '{data.treatment}'")
        state.frame = frame.filter(pl.col(data.treatment).is_not_null()).with_columns(
            pl.col(data.treatment).cast(pl.Int64 if isinstance(arms[0], int) else pl.String))
        state.classes = arms  # causal: the treatment's arms, control first; code i is arms[i]
        return f"{detail}; {arm_counts(state.frame, data.treatment, arms)}"


def arm_counts(part: Any, treatment: str, arms: list) -> str:
    """'139 treated, 608 control' (0/1), else 'control 300, email 220, call 227'."""
    counts = dict(part[treatment].value_counts().iter_rows())
    if arms == [0, 1]:
        return f"{counts.get(1, 0)} treated, {counts.get(0, 0)} control"
    return ", ".join(f"{arm} {counts.get(arm, 0)}" for arm in arms)


def arm_name(arms: list, arm: Any) -> str:
    """How a message names an arm: 'treated' / 'control' (0/1), else its label."""
    return {0: "control", 1: "treated"}[arm] if arms == [0, 1] else f"'{arm}'"


@dataclass
class CausalSplit(Split):
    """Random split stratified by treatment (temporal when asked); every split needs rows of every arm."""

    def describe(self) -> str:
        text = super().describe()
        return text.replace("random:", "random, stratified by treatment:", 1)

    def run(self, state: TrainState) -> str:
        from mmp.masking import scrub

        spec, treatment, arms = self.spec.data.split, self.spec.data.treatment, state.classes
        state.parts = treatment_split(state.frame, spec, treatment)
        problems = []
        for name, part in state.parts.items():
            counts = dict(part[treatment].value_counts().iter_rows()) if part.height else {}
            for arm, n in ((arm, counts.get(arm, 0)) for arm in arms if part.height):
                if n < MIN_ARM_ROWS:
                    has = f"only {n} {arm_name(arms, arm)} row{'s' * (n > 1)}" if n else f"no {arm_name(arms, arm)} rows"
                    problems.append(Problem("data.treatment", f"the {name} split ({part.height} rows) has {has}",
                                            f"every split needs {MIN_ARM_ROWS} or more rows of each arm: give more "
                                            "data, or larger split ratios", state.pipeline.origin("data.treatment")))
        if problems:
            raise ConfigError(problems, f"data at {scrub(self.spec.data.source or '')}")
        return f"{spec.strategy}: " + " / ".join(
            f"{name} {part.height} ({arm_counts(part, treatment, arms)})" for name, part in state.parts.items())


def treatment_split(frame: Any, spec: Any, treatment: str) -> dict:
    """`mmp.training.split.split`, stratified by treatment when random (too few rows of an arm to
    stratify: plain random, and the caller's check names the split that lacks an arm)."""
    from mmp.errors import UserError
    from mmp.training.split import split

    if spec.strategy == "random":
        try:
            return split(frame, spec.model_copy(update={"strategy": "stratified"}), treatment)
        except UserError:
            pass
    return split(frame, spec, treatment)


@dataclass
class CausalPreprocess(Preprocess):
    """The recipe's steps as one ColumnTransformer, fitted with the learner on train only."""

    def run(self, state: TrainState) -> str:
        from mmp.models.tabular import model_input
        from mmp.training.preprocess import build_preprocessor

        # EconML learners refuse missing values: numeric columns with no impute step get a median guard.
        state.preprocessor = build_preprocessor(self.spec.preprocess, state.features, set(state.numeric), False)
        state.inputs = {name: model_input(part.to_pandas(), state.features, state.numeric)
                        for name, part in state.parts.items()}
        state.targets = {name: part[self.spec.data.target].to_numpy().astype(float) for name, part in state.parts.items()}
        return f"{len(self.spec.preprocess)} step(s) over {len(state.features)} features"


def arm_codes(state: TrainState, name: str, spec: RunSpec):
    """The treatment of split `name` as arm codes: 0 = control, i = `state.classes[i]`."""
    import polars as pl

    arms = state.classes
    return state.parts[name][spec.data.treatment].replace_strict(arms, list(range(len(arms))),
                                                                  return_dtype=pl.Int64).to_numpy()


def build_learner(spec: RunSpec, arms: int = 2) -> tuple[Any, list]:
    """The unfitted EconML learner of the recipe for `arms` arms (codes 0..arms-1, 0 the control),
    and every base learner put into it."""
    from mmp.config.estimators import import_class, parameter_names

    cls = import_class(spec.model.class_path)
    names, _ = parameter_names(cls)
    bases: list = []

    def build(value: Any) -> Any:
        if is_base_spec(value):
            bases.append(instantiate(value))
            return bases[-1]
        if isinstance(value, list) and any(is_base_spec(v) for v in value):
            return [build(v) for v in value]
        return value

    params = {name: build(value) for name, value in spec.model.params.items()}
    for role, kind in filled_roles(spec.model.class_path, cls, params).items():
        params[role] = build(default_base(kind, spec.data.split.seed))
    params.update({k: v for k, v in FIXED_PARAMS.items() if k in names})
    if "categories" in names:  # control first: EconML measures every arm against its first category
        params["categories"] = list(range(arms))
    if "random_state" in names and "random_state" not in params:
        params["random_state"] = spec.data.split.seed
    return cls(**params), bases


def filled_roles(class_path: str, cls: type, params: dict[str, Any]) -> dict[str, str]:
    """The base-learner roles mmp fills: left out, and EconML has no default for them (or only 'auto')."""
    signature = inspect.signature(cls.__init__).parameters
    out = {}
    for role, kind in BASE_ROLES[class_path].items():
        default = signature[role].default if role in signature else None
        if params.get(role) is None and (default is inspect.Parameter.empty or
                                         (isinstance(default, str) and default == "auto")):
            out[role] = kind
    return out


def default_base(kind: str, seed: int) -> dict[str, Any]:
    """mmp's default base learner of `kind`, seeded."""
    base = DEFAULT_BASE[kind]
    return {"class_path": base["class_path"], "params": {**base["params"], "random_state": seed}}


def instantiate(spec: dict[str, Any]) -> Any:
    """A base learner from its `{class_path, params}` mapping."""
    from mmp.config.estimators import import_class

    return import_class(spec["class_path"])(**(spec.get("params") or {}))


def _shown(value: Any) -> str:
    """A base learner as the plan prints it: `GradientBoostingRegressor(max_depth=3)`."""
    if isinstance(value, list):
        return f"[{', '.join(_shown(v) for v in value)}]"
    if is_base_spec(value):
        params = ", ".join(f"{k}={v!r}" for k, v in (value.get("params") or {}).items())
        return f"{value['class_path'].rpartition('.')[2]}({params})"
    return repr(value)


@dataclass
class CausalFit:
    """Build the EconML learner (base learners instantiated) and fit it on the preprocessed train rows."""

    spec: RunSpec
    name: str = "fit"
    opens_run: bool = True

    def describe(self) -> str:
        from mmp.config.estimators import import_class

        model = self.spec.model
        filled = filled_roles(model.class_path, import_class(model.class_path), model.params)
        parts = [f"{k}={_shown(v)}" for k, v in model.params.items() if k not in filled]
        parts += [f"{role}={_shown(default_base(kind, self.spec.data.split.seed))} (default)" for role, kind in filled.items()]
        return f"{model.class_path}({', '.join(parts)}) on the treatment '{self.spec.data.treatment}'"

    def run(self, state: TrainState) -> str:
        from mmp.models.causal import CausalModel
        from mmp.training.seeding import seed_everything

        seed_everything(self.spec.data.split.seed)
        learner, _ = build_learner(self.spec, len(state.classes))
        X = state.preprocessor.fit_transform(state.inputs["train"])
        try:
            learner.fit(state.targets["train"], arm_codes(state, "train", self.spec), X=X)
        except (ValueError, TypeError) as exc:  # EconML checks its settings only when it fits
            from mmp.errors import UserError

            raise UserError(f"model.params: {self.spec.model.class_path} cannot fit with these settings: "
                            f"{str(exc).strip().splitlines()[0]}") from exc
        state.model = CausalModel(state.preprocessor, learner, state.features, state.numeric, state.classes)
        return f"{self.spec.model.class_path} on {X.shape[0]} rows, {X.shape[1]} features after preprocessing"


@dataclass
class CausalEvaluate:
    """ATE with a 95% interval (AIPW, nuisances fitted on train) and uplift metrics on validation and test,
    per arm against the control when there are several (then `auuc`, `qini` are the means over arms)."""

    spec: RunSpec
    metrics: list[str]
    primary_metric: str
    name: str = "evaluate"
    opens_run: bool = True

    def describe(self) -> str:
        return (f"{', '.join(self.metrics)} on validation and test; primary {self.primary_metric} (higher is better); "
                "ATE with a 95% interval (doubly robust AIPW, nuisances fitted on train), mean predicted effect; "
                "each arm against the control when there are several")

    def run(self, state: TrainState) -> str:
        from mmp.training.uplift import evaluation

        outcomes, propensity = self._nuisances(state)
        for name in SCORED:
            X = state.inputs.get(name)
            if X is None or not len(X):
                continue
            predicted = state.model.predict_frame(X)
            state.predictions[name] = predicted
            Xt = state.preprocessor.transform(X)
            values = evaluation(state.targets[name], arm_codes(state, name, self.spec), predicted, state.classes,
                                [m.predict(Xt) for m in outcomes], propensity.predict_proba(Xt), self.metrics)
            state.metrics.update({f"{name}_{metric}": value for metric, value in values.items()})
        scored = "validation" if state.sizes.get("validation") else "test"
        state.primary_key = f"{scored}_{self.primary_metric}"
        return "; ".join(f"{split} " + ", ".join(f"{k[len(split) + 1:]} {v:.4g}" for k, v in state.metrics.items()
                                                  if k.startswith(split + "_") and not k.endswith("_se"))
                         for split in SCORED if state.sizes.get(split))

    def _nuisances(self, state: TrainState) -> tuple[list, Any]:
        """An outcome model per arm (control first) and a propensity model over the arm codes, fitted on
        train: the recipe's own outcome regressor and propensity classifier where it names them, else mmp's defaults."""
        from sklearn.base import clone

        seed = self.spec.data.split.seed
        given = {kind: v for role, kind in reversed(BASE_ROLES[self.spec.model.class_path].items())
                 for v in [self.spec.model.params.get(role)] if is_base_spec(v)}
        outcome = instantiate(given.get("regressor") or default_base("regressor", seed))
        propensity = instantiate(given.get("classifier") or default_base("classifier", seed))
        X = state.preprocessor.transform(state.inputs["train"])
        y, t = state.targets["train"], arm_codes(state, "train", self.spec)
        return [clone(outcome).fit(X[t == j], y[t == j]) for j in range(len(state.classes))], propensity.fit(X, t)


@dataclass
class CausalLog(Log):
    """Params, metrics, config; uplift, Qini and effect-by-decile plots (test); the model (pyfunc)."""

    draws_plots: ClassVar[bool] = False  # its plots are drawn here, not by a plot worker

    def describe(self) -> str:
        return super().describe().replace("plots", "uplift/Qini/effect-by-decile plots")

    def run(self, state: TrainState) -> str:
        import mlflow

        from mmp.training import plots, uplift_plots

        log_record(state)
        report = "test" if "test" in state.predictions else next(iter(state.predictions))
        for name, figure in uplift_plots.figures(report, state.targets[report], arm_codes(state, report, self.spec),
                                                 state.predictions[report], state.classes):
            mlflow.log_figure(figure, f"plots/{name}.png")
            plots.close(figure)
        # The signature shows the columns as the data holds them (0/1 indicators as integers), so the
        # standard pyfunc takes rows read from the same file.
        example = state.parts["train"].head(5).to_pandas()[state.features]
        parts = [state.model.learner, state.model.preprocessor, *build_learner(self.spec)[1]]  # pins their packages
        log_pyfunc(state, state.model, example, parts, {
            "classes": None, "treatment": self.spec.data.treatment, "arms": state.classes,
            "outputs": list(state.model.predict_frame(example).columns)})
        return f"run {state.run_id} (params, metrics, tags, model, config, plots)"
