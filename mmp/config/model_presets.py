"""Model presets: `model=NAME` swaps the recipe's model for a named one (a class per task, default
params, a default search space) without editing the recipe.

Presets are the options of the `model` config group: mmp's own ship inside the package
(`mmp/config/presets/model/NAME.yaml`, so they exist when a ConfigMap replaces `conf/`), and a
project's `conf/model/NAME.yaml` adds one or overrides a shipped one (the conf dir comes first on
Hydra's search path). Their `# @package model_preset` header composes a preset beside the recipe,
never merged into the recipe's `model`: a merge would leave LogisticRegression's `C` among
LGBMClassifier's params. Overrides of `model.*` and `tune.params.*` are aimed at the preset
(`hydra_overrides`), so they apply on top of it; `apply_model_preset` then puts it in place of the
recipe's `model` and `tune.params`, keeping the rest of the recipe's `tune` (n_trials, cv, ...).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mmp.errors import UserError

GROUP = "model"  # model=NAME
PRESET_KEY = "model_preset"  # where Hydra composes the chosen preset (the files' `# @package`)
SHIPPED_DIR = Path(__file__).parent / "presets"  # a Hydra config dir holding the `model` group
_AIMED = ("model", "tune.params")  # the recipe keys a preset replaces
_TASK_FREE = "(any task)"


def aim_at_preset(key: str) -> str:
    """`model.params.C` -> `model_preset.model.params.C` (also `tune.params...`); other keys unchanged."""
    if any(key == k or key.startswith(k + ".") for k in _AIMED):
        return f"{PRESET_KEY}.{key}"
    return key


def hydra_overrides(overrides: list[str], conf_dir: Path, multirun: bool = False) -> list[str]:
    """The overrides as Hydra must get them: with a preset chosen, `model.*` and `tune.params.*` aimed
    at it; and `model=NAME` written `+model=NAME` when config.yaml's defaults have no `model` entry
    (a project's own conf/, e.g. a ConfigMap written before presets existed)."""
    has_entry, default = _defaults_entry(conf_dir)
    chosen = default is not None or any(_chooses_preset(o) for o in overrides)
    # A sweep over presets (-m model=a,b) first composes a config with no preset at all, where the
    # aimed keys do not exist: `++` sets them there too, and changes each job's preset as `=` would.
    swept = multirun and any(_chooses_preset(o) and _is_sweep(o) for o in overrides)
    out = []
    for override in overrides:
        prefix, rest = re.match(r"([+~]*)(.*)", override, re.S).groups()
        key, eq, value = rest.partition("=")
        if key == GROUP and prefix == "" and eq and not has_entry:
            out.append(f"+{override}")
        elif chosen and key != GROUP and aim_at_preset(key) != key:
            out.append(("++" if swept and prefix in ("", "+") else prefix) + aim_at_preset(key) + eq + value)
        else:
            out.append(override)
    return out


def _is_sweep(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except HydraException:  # Hydra reports it when it reads the same words
        return False


def _chooses_preset(override: str) -> bool:
    key, eq, value = override.lstrip("+").partition("=")
    return not override.startswith("~") and key == GROUP and bool(eq) and value.strip() not in ("", "null")


def _defaults_entry(conf_dir: Path) -> tuple[bool, str | None]:
    """Whether config.yaml's defaults list has a `model` entry, and the preset it chooses (None: none)."""
    from mmp.config.request import yaml_data

    defaults = yaml_data(conf_dir / "config.yaml").get("defaults")
    for item in defaults if isinstance(defaults, list) else []:
        if isinstance(item, dict) and len(item) == 1:
            (key, option), = item.items()
            group = str(key).replace("optional ", "").replace("override ", "").strip().split("@", 1)[0]
            if group == GROUP:
                return True, option if isinstance(option, str) and option not in ("???",) else None
    return False, None


def preset_files(conf_dir: Path | None) -> dict[str, Path]:
    """Every preset name -> the file Hydra reads for it (the project's conf/model/ wins over mmp's)."""
    found: dict[str, Path] = {}
    for root in ([conf_dir / GROUP] if conf_dir is not None else []) + [SHIPPED_DIR / GROUP]:
        for path in sorted(root.glob("*.y*ml")) if root.is_dir() else []:
            if path.suffix in (".yaml", ".yml") and not path.name.startswith("."):
                found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def preset_classes(path: Path) -> dict[str, str]:
    """task -> class path that a preset file declares (`(any task)` for a single class path)."""
    from mmp.config.request import yaml_data

    model = yaml_data(path).get("model")
    classes = model.get("class_path") if isinstance(model, dict) else None
    if isinstance(classes, str):
        return {_TASK_FREE: classes}
    return {str(t): str(c) for t, c in classes.items()} if isinstance(classes, dict) else {}


def presets_for(task: str, conf_dir: Path | None) -> list[str]:
    """The presets that serve `task` (a preset with one class for any task: when that class suits it)."""
    from mmp.config.estimators import KIND_FOR_TASK, ImportProblem, estimator_kind, import_class

    fitting = []
    for name, path in preset_files(conf_dir).items():
        classes = preset_classes(path)
        if task in classes:
            fitting.append(name)
        elif _TASK_FREE in classes:
            try:
                if estimator_kind(import_class(classes[_TASK_FREE])) == KIND_FOR_TASK.get(task):
                    fitting.append(name)
            except ImportProblem:
                pass
    return fitting


def apply_model_preset(cfg: Any, choices: dict[str, Any], request: Any) -> Any:
    """The composed config with the chosen preset in place of the recipe's `model` and `tune.params`
    (the rest of `tune` stays); `cfg` itself when no preset is chosen."""
    from omegaconf import OmegaConf

    from mmp.config.request import shown_path

    name = choices.get(GROUP)
    if not name:
        return cfg
    conf_dir = getattr(request, "conf_dir", None)
    where = shown_path(preset_files(conf_dir).get(name)) or f"the '{GROUP}' group"
    data = OmegaConf.to_container(cfg, resolve=False)
    preset = data.pop(PRESET_KEY, None)
    if not isinstance(preset, dict):
        raise UserError(f"model={name}: the preset's keys did not land under '{PRESET_KEY}' ({where}); "
                        f"make '# @package {PRESET_KEY}' the first line of that file")
    problem = _shape_problem(preset)
    if problem:
        raise UserError(f"model={name}: {problem} ({where}); a preset holds model.class_path (one class, or "
                        "task: class), model.params, model.task_params (task: params) and tune.params")
    model, task = preset["model"], OmegaConf.select(cfg, "task", default=None)
    data["model"] = {"class_path": _class_for(name, model["class_path"], task, conf_dir, where),
                     "params": {**(model.get("params") or {}), **((model.get("task_params") or {}).get(task) or {})}}
    tune = data.get("tune") if isinstance(data.get("tune"), dict) else {}
    data["tune"] = {**tune, "params": (preset.get("tune") or {}).get("params") or {}}
    return OmegaConf.create(data)


def _shape_problem(preset: dict) -> str | None:
    """What is wrong with the shape of a preset's keys, or None."""
    from mmp.config.spec import TASKS

    model, tune = preset.get("model"), preset.get("tune") or {}
    unknown = sorted(set(preset) - {"model", "tune"})
    if unknown or not isinstance(model, dict):
        return f"unknown key {unknown[0]!r}" if unknown else "'model' must be a mapping"
    unknown = sorted(set(model) - {"class_path", "params", "task_params"}) + sorted(set(tune) - {"params"})
    if unknown:
        return f"unknown key {unknown[0]!r}"
    classes, task_params = model.get("class_path"), model.get("task_params") or {}
    if not isinstance(classes, (str, dict)) or not classes:
        return "model.class_path must be a class path or a mapping of task to class path"
    for key, value in (("model.params", model.get("params")), ("model.task_params", task_params),
                       ("tune.params", tune.get("params")), *((f"model.task_params.{t}", p) for t, p in task_params.items())):
        if value is not None and not isinstance(value, dict):
            return f"{key} must be a mapping"
    tasks = [t for t in (*(classes if isinstance(classes, dict) else ()), *task_params) if t not in TASKS]
    return f"unknown task {tasks[0]!r} (tasks: {', '.join(TASKS)})" if tasks else None


def _class_for(name: str, classes: str | dict, task: Any, conf_dir: Path | None, where: str) -> str:
    """The preset's class for the recipe's task; a UserError naming the presets that do serve it."""
    from mmp.config.spec import TASKS

    if isinstance(classes, str):
        return classes
    if task in classes:
        return str(classes[task])
    if task not in TASKS or not classes:  # the schema check reports a bad task
        return str(next(iter(classes.values()), ""))
    fitting = [p for p in presets_for(task, conf_dir) if p != name]
    serves = " and ".join(str(t) for t in classes)
    raise UserError(f"model={name}: the preset serves {serves}, but the recipe's task is {task} ({where}); "
                    + (f"presets for {task}: {', '.join(fitting)}" if fitting else f"no preset serves {task}")
                    + " (see 'mmp list models')")

