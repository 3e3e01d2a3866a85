"""From the command line to a composition request: seed flags and Hydra's words -> overrides.

mmp is a thin translator (as `tune run` is over torchtune configs): `-r FILE`, `-c FILE`,
`-d URI`, `-p JSON`, `RECIPE_PATH` and `CONFIG_PATH` become ordinary Hydra overrides; which conf
dir, recipe and env apply is decided here (see "Which recipe and env a command uses" in the README).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from mmp.config.hydra_errors import bad_override, override_key
from mmp.config.spec import ENV_KEYS, RECIPE_KEYS
from mmp.errors import UserError

CONF_DIR_VAR = "MMP_CONF_DIR"
RECIPES_DIR_VAR = "MMP_RECIPES_DIR"
RECIPE_PATH_VAR = "RECIPE_PATH"
CONFIG_PATH_VAR = "CONFIG_PATH"
# The seed's defaults when nothing names a recipe or an env (see "Which recipe and env" in the README).
DEFAULT_RECIPE = "model"  # recipes/model.yaml
SEED_CONFIG_FILE = "configs/production.yaml"
# Read by the search path plugin in hydra_plugins/mmp_searchpath.
_RECIPE_FILE_VAR = "_MMP_RECIPE_FILE"
_ENV_FILE_VAR = "_MMP_ENV_FILE"

# Hydra flags that take a value (the next word); the rest are switches.
_HYDRA_VALUE_FLAGS = {"--cfg", "--package", "--config-path", "-cp", "--config-name", "-cn",
                      "--config-dir", "-cd", "--experimental-rerun"}
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


@dataclass
class Request:
    """What to compose: the conf dir, Hydra flags and overrides, and any loose recipe/env file."""

    conf_dir: Path
    overrides: list[str] = field(default_factory=list)
    hydra_flags: list[str] = field(default_factory=list)
    recipe_file: Path | None = None
    env_file: Path | None = None
    recipes_dir: Path = Path("recipes")

    @property
    def multirun(self) -> bool:
        """A sweep: `-m`/`--multirun`, or Hydra's own `hydra.mode=MULTIRUN` override."""
        mode = [o.partition("=")[2] for o in self.overrides if o.partition("=")[0].lstrip("+") == "hydra.mode"]
        return "-m" in self.hydra_flags or "--multirun" in self.hydra_flags or mode[-1:] == ["MULTIRUN"]

    def hydra_overrides(self) -> list[str]:
        """The overrides as Hydra gets them: with a model preset chosen, `model.*` and `tune.params.*`
        aimed at the preset (see `model_presets`)."""
        from mmp.config.model_presets import hydra_overrides

        return hydra_overrides(self.overrides, self.conf_dir, self.multirun)

    def origin(self, key_path: str, choices: dict[str, Any] | None = None) -> str | None:
        """Where the value at `key_path` came from: an override, the model preset, the recipe file or the env file."""
        from mmp.config.model_presets import GROUP, PRESET_KEY, aim_at_preset, preset_files

        recipe, env = self.files(choices or {})
        preset = (choices or {}).get(GROUP)
        key_path = key_path.removeprefix(PRESET_KEY + ".")
        root = key_path.split(".", 1)[0]
        if root == "recipe":  # a recipe with its own `# @package recipe` header
            return shown_path(recipe)
        if root == "env":  # an env file without its `# @package _global_` header
            return shown_path(env)
        for override in reversed(self.overrides):
            key = override.split("=", 1)[0].lstrip("+~")
            if preset and key == GROUP:  # `model=NAME` chose the preset, whose file is named below
                continue
            if key_path == key or key_path.startswith(key + ".") or key.startswith(key_path + "."):
                return f"override '{override}'"
        if preset and aim_at_preset(key_path) != key_path:
            return shown_path(preset_files(self.conf_dir).get(preset)) or f"model={preset}"
        if root in RECIPE_KEYS:
            return shown_path(recipe)
        if root in ENV_KEYS:
            return shown_path(env)
        for file in (recipe, env):  # an unknown key (a typo): the file that wrote it
            if file is not None and root in _top_level_keys(file):
                return shown_path(file)
        return shown_path(self.conf_dir / "config.yaml")

    def files(self, choices: dict[str, Any]) -> tuple[Path | None, Path | None]:
        """The recipe file and the env file that Hydra's `choices` (group -> option) stand for."""
        return (self.recipe_file or _option_file(self.recipes_dir, choices.get("recipe")),
                self.env_file or _option_file(self.conf_dir / "env", choices.get("env")))

    def choices(self) -> dict[str, str]:
        """The recipe, env and model options this request picks (its overrides, else config.yaml's defaults),
        for errors raised before Hydra's own record of them (`runtime.choices`) exists."""
        defaults = yaml_data(self.conf_dir / "config.yaml").get("defaults") or []
        chosen = {}
        for item in defaults if isinstance(defaults, list) else []:
            if isinstance(item, dict) and len(item) == 1:
                (group, option), = item.items()
                if isinstance(option, str) and option != "???":
                    chosen[str(group)] = option
        for override in self.overrides:
            key, _, option = override.partition("=")
            if key.lstrip("+") in ("recipe", "env", "model") and option:
                chosen[key.lstrip("+")] = option
        return chosen


def _option_file(folder: Path, option: str | None) -> Path | None:
    if not option:
        return None
    for suffix in (".yaml", ".yml"):
        candidate = folder / f"{option}{suffix}"
        if candidate.is_file():
            return candidate
    return folder / f"{option}.yaml"


def yaml_data(path: Path) -> dict:
    """The mapping a YAML file holds (empty when it cannot be read or is no mapping)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _top_level_keys(path: Path) -> set[str]:
    """The root keys a YAML file writes (none when it cannot be read)."""
    return {str(k) for k in yaml_data(path)}


def shown_path(path: Path | None) -> str | None:
    """A file as messages name it: relative to the working directory when it is inside it."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def hydra_value(value: Any) -> str:
    """A Python/JSON value written in Hydra's override grammar."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{hydra_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def json_object(params_json: str, flag: str = "-p") -> dict[str, Any]:
    """The JSON object a flag gives (`-p '{"max_depth": 5}'`), or a UserError saying what is wrong."""
    try:
        params = json.loads(params_json)
    except json.JSONDecodeError as exc:
        raise UserError(f"{flag}: not valid JSON ({exc.msg} at character {exc.pos}): {params_json!r}") from exc
    if not isinstance(params, dict):
        raise UserError(f"{flag}: expected a JSON object like '{{\"max_depth\": 5}}', got {type(params).__name__}")
    return params


def params_overrides(params_json: str, sql_source: bool = False) -> list[str]:
    """`-p '{"max_depth": 5, "data.split.seed": 1}'` -> Hydra overrides. A key that starts with a
    config root key (data, model, ...) is a full path; any other key is a model parameter, or with
    a SQL source (`sql_source`) a template parameter of the query (`data.params.KEY`)."""
    params = json_object(params_json)

    def flatten(prefix: str, node: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                yield from flatten(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            yield prefix, node

    home = "data.params" if sql_source else "model.params"
    overrides = []
    for key, value in flatten("", params):
        root = key.split(".", 1)[0]
        path = key if root in RECIPE_KEYS + ENV_KEYS else f"{home}.{key}"
        overrides.append(f"++{path}={hydra_value(value)}")
    return overrides


def has_sql_source(request: "Request", data_uri: str | None = None) -> bool:
    """Whether the data of the recipe this request picks comes from a query: `-d`, a `data.source` or
    `data.query` override, else the recipe file itself (peeked at, as model presets are)."""
    from mmp.io.sql_source import is_sql_file

    if data_uri:
        return is_sql_file(data_uri)
    for override in reversed(request.overrides):
        key, _, value = override.partition("=")
        if key.lstrip("+") == "data.source":
            return is_sql_file(value.strip("'\""))
        if key.lstrip("+") == "data.query":
            return bool(value)
    recipe = request.files(request.choices())[0]
    data = yaml_data(recipe).get("data") if recipe is not None else None
    return isinstance(data, dict) and (is_sql_file(data.get("source")) or bool(data.get("query")))


def split_hydra_args(args: list[str]) -> tuple[list[str], list[str]]:
    """Separate Hydra flags (with their values) from overrides."""
    flags, overrides = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            flags.append(arg)
            takes_value = arg in _HYDRA_VALUE_FLAGS or (arg in ("--info", "-i") and i + 1 < len(args) and args[i + 1] in _INFO_TOPICS)
            if takes_value and "=" not in arg and i + 1 < len(args):
                flags.append(args[i + 1])
                i += 1
        else:
            overrides.append(arg)
        i += 1
    return flags, overrides


def _chosen(overrides: list[str], group: str) -> bool:
    return any(o.split("=", 1)[0].lstrip("+~") in (group, f"{group}@_global_") for o in overrides)


def build_request(
    args: list[str],
    *,
    recipe_file: str | None = None,
    env_file: str | None = None,
    data_uri: str | None = None,
    params_json: str | None = None,
    with_recipe: bool = True,
) -> Request:
    """Turn command-line words and seed-style flags into one `Request`."""
    flags, overrides = split_hydra_args(list(args))
    for override in overrides:
        if not override_key(override):  # Hydra would take '' for the root config group
            raise UserError(bad_override(override, "there is no key before '='" if "=" in override else "there is no key"))
    flags, config_dir = _take_config_dir(flags)
    conf_dir = Path(config_dir or os.environ.get(CONF_DIR_VAR) or "conf")
    if not (conf_dir / "config.yaml").is_file():
        given = f"--config-dir {config_dir}" if config_dir else f"the conf dir '{conf_dir}'"
        raise UserError(
            f"no config.yaml in {given}; run mmp from a project folder, "
            f"set {CONF_DIR_VAR} or pass --config-dir DIR, or create a project with 'mmp init NAME'"
        )
    request = Request(
        conf_dir=conf_dir.resolve(),
        hydra_flags=flags,
        recipes_dir=Path(os.environ.get(RECIPES_DIR_VAR) or "recipes"),
    )

    if recipe_file and _chosen(overrides, "recipe"):
        raise UserError("give the recipe either as -r FILE or as recipe=NAME, not both")
    if env_file and _chosen(overrides, "env"):
        raise UserError("give the env either as -c FILE or as env=NAME, not both")
    if with_recipe:
        recipe_file = recipe_file or (None if _chosen(overrides, "recipe") else os.environ.get(RECIPE_PATH_VAR))
    env_file = env_file or (None if _chosen(overrides, "env") else os.environ.get(CONFIG_PATH_VAR))
    if not env_file and not _chosen(overrides, "env") and Path(SEED_CONFIG_FILE).is_file():
        env_file = SEED_CONFIG_FILE

    chosen = []
    if recipe_file:
        request.recipe_file = _existing_yaml(recipe_file, "recipe", "-r / RECIPE_PATH")
        chosen.append(f"recipe={request.recipe_file.stem}")
    elif not with_recipe and not _chosen(overrides, "recipe"):
        chosen.append("~recipe")
    elif not _chosen(overrides, "recipe") and _option_file(request.recipes_dir, DEFAULT_RECIPE).is_file():
        chosen.append(f"recipe={DEFAULT_RECIPE}")
    if env_file:
        request.env_file = _existing_yaml(env_file, "env", "-c / CONFIG_PATH")
        chosen.append(f"env={request.env_file.stem}")
    if data_uri:
        chosen.append(f"++data.source={hydra_value(data_uri)}")
    request.overrides = chosen + overrides
    if params_json:
        sql = with_recipe and has_sql_source(request, data_uri)
        request.overrides = chosen + params_overrides(params_json, sql_source=sql) + overrides
    return request


def _take_config_dir(flags: list[str]) -> tuple[list[str], str | None]:
    """Hydra's `--config-dir DIR` / `-cd DIR` selects mmp's conf dir (as MMP_CONF_DIR does): taken out
    of the flags, since Hydra would only add DIR to the search path and ./conf would still win."""
    rest, chosen = [], None
    i = 0
    while i < len(flags):
        flag = flags[i]
        if flag in ("--config-dir", "-cd"):
            if i + 1 >= len(flags):
                raise UserError(f"{flag}: give the folder that holds config.yaml, e.g. {flag} /app/conf")
            chosen = flags[i + 1]
            i += 2
            continue
        if flag.startswith("--config-dir="):
            chosen = flag.split("=", 1)[1]
        else:
            rest.append(flag)
        i += 1
    return rest, chosen


def _existing_yaml(path: str, what: str, flag: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{flag}: {what} file not found: {path}")
    if file.suffix not in (".yaml", ".yml"):
        raise UserError(f"{flag}: {what} file must be a .yaml or .yml file, got: {path}")
    return file.resolve()
