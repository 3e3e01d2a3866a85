"""Hydra plugins that make a flat `recipes/` folder (and loose recipe/env files) Hydra config groups.

`recipes/fraud/xgb.yaml` becomes the option `fraud/xgb` of the `recipe` group, so
`recipe=fraud/xgb` and Hydra's own "Available options in 'recipe'" message work without a
`recipes/recipe/` folder. Recipes and loose env files are packaged at the root of the
composed config (`_global_`) unless the file says otherwise with a `# @package` header.

mmp's model presets (`model=lightgbm`) ship inside the package (`mmp/config/presets/model/`), so
they are there when a ConfigMap replaces `conf/`; that folder goes on the search path after the
conf dir, so a project's `conf/model/NAME.yaml` adds a preset or replaces a shipped one.

Where things are comes from the environment, so Hydra launchers that start new processes
compose the same config:
  MMP_RECIPES_DIR    the recipes folder (default: ./recipes)
  _MMP_RECIPE_FILE   one recipe file given with `mmp ... -r FILE` (set by mmp's CLI)
  _MMP_ENV_FILE      one env file given with `mmp ... -c FILE` (set by mmp's CLI)
"""

from __future__ import annotations

import os
from typing import List, Optional

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

RECIPES_DIR_VAR = "MMP_RECIPES_DIR"
RECIPE_FILE_VAR = "_MMP_RECIPE_FILE"
ENV_FILE_VAR = "_MMP_ENV_FILE"
YAML_SUFFIXES = (".yaml", ".yml")


def _hidden(name: str) -> bool:
    # ConfigMap mounts hold `..data` and `..2026_01_01_...` folders next to the real files.
    return name.startswith(".")


def _fill(data: dict, defaults: dict) -> dict:
    """`data` with the keys it lacks taken from `defaults`, recursively, keeping the file's key order."""
    out = dict(data)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _fill(out[key], value)
    return out


class _GroupSource(ConfigSource):
    """A folder, or a single yaml file, presented as the options of one config group."""

    group = ""

    @staticmethod
    def defaults() -> dict:
        """Keys every file of the group has, so `key=value` overrides work without a `+`."""
        return {}

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.root = self.path
        self.single_file = os.path.isfile(self.root)

    def _relative(self, config_path: str) -> Optional[str]:
        """The part of `config_path` inside our group, or None when it is outside it."""
        config_path = config_path.strip("/")
        if config_path == self.group:
            return ""
        if config_path.startswith(self.group + "/"):
            return config_path[len(self.group) + 1 :]
        return None

    def _file_for(self, option: str) -> Optional[str]:
        if self.single_file:
            stem = os.path.splitext(os.path.basename(self.root))[0]
            return self.root if option == stem else None
        for suffix in YAML_SUFFIXES:
            candidate = os.path.join(self.root, option + suffix)
            if os.path.isfile(candidate):
                return candidate
        return None

    def load_config(self, config_path: str) -> ConfigResult:
        rel = self._relative(self._normalize_file_name(config_path)[: -len(".yaml")])
        path = self._file_for(rel) if rel else None
        if path is None:
            raise ConfigLoadError(f"Config not found: {config_path} in {self.root}")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        header = ConfigSource._get_header_dict(text[:512])
        if header.get("package") is None:
            header["package"] = "_global_"
        try:
            cfg = OmegaConf.create(text) if text.strip() else OmegaConf.create({})
        except Exception as exc:  # YAML syntax: name the file, keep the parser's line and column
            raise ConfigLoadError(f"{path}: not valid YAML: {exc}") from exc
        if not OmegaConf.is_dict(cfg):
            raise ConfigLoadError(f"{path}: a {self.group} file must be a mapping of keys, not a {type(cfg).__name__}")
        if header["package"] == "_global_":
            cfg = OmegaConf.create(_fill(OmegaConf.to_container(cfg), self.defaults()))
        return ConfigResult(config=cfg, path=f"{self.scheme()}://{path}", provider=self.provider, header=header)

    def available(self) -> bool:
        return os.path.exists(self.root)

    def is_group(self, config_path: str) -> bool:
        if config_path.strip("/") == "":
            return True
        rel = self._relative(config_path)
        if rel is None:
            return False
        if rel == "":
            return True
        return not self.single_file and os.path.isdir(os.path.join(self.root, rel))

    def is_config(self, config_path: str) -> bool:
        rel = self._relative(config_path)
        if not rel:
            return False
        if rel.endswith(YAML_SUFFIXES):
            rel = os.path.splitext(rel)[0]
        return self._file_for(rel) is not None

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> List[str]:
        """Option names in a group, as Hydra lists them (without the group prefix). Recipes in
        subfolders are listed too (`team/xgb`), so Hydra's "Available options" shows every one."""
        if config_path.strip("/") == "":
            return [self.group] if results_filter in (None, ObjectType.GROUP) else []
        rel = self._relative(config_path)
        if rel is None:
            return []
        if self.single_file:
            stem = os.path.splitext(os.path.basename(self.root))[0]
            return [stem] if rel == "" and results_filter in (None, ObjectType.CONFIG) else []
        folder = os.path.join(self.root, rel)
        found: List[str] = []
        for parent, dirs, files in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            prefix = os.path.relpath(parent, folder).replace(os.sep, "/")
            prefix = "" if prefix == "." else prefix + "/"
            if results_filter in (None, ObjectType.GROUP) and not prefix:
                found += dirs
            if results_filter in (None, ObjectType.CONFIG):
                found += [prefix + os.path.splitext(f)[0] for f in files if f.endswith(YAML_SUFFIXES) and not _hidden(f)]
        return sorted(set(found))


class RecipesConfigSource(_GroupSource):
    """`mmp-recipes://PATH`: a recipes folder (or one recipe file) as the `recipe` group."""

    group = "recipe"

    @staticmethod
    def scheme() -> str:
        return "mmp-recipes"

    @staticmethod
    def defaults() -> dict:
        from mmp.config.spec import RecipeSpec, defaults_of

        return defaults_of(RecipeSpec)


class EnvFileConfigSource(_GroupSource):
    """`mmp-env://PATH`: one env file (from `-c FILE`) as an option of the `env` group."""

    group = "env"

    @staticmethod
    def scheme() -> str:
        return "mmp-env"

    @staticmethod
    def defaults() -> dict:
        from mmp.config.spec import EnvSpec, defaults_of

        return defaults_of(EnvSpec)


class MmpSearchPathPlugin(SearchPathPlugin):
    """Puts the recipes folder, mmp's model presets, and any loose recipe/env file, on Hydra's config search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        recipes_dir = os.path.abspath(os.environ.get(RECIPES_DIR_VAR) or "recipes")
        search_path.append(provider="mmp", path=f"mmp-recipes://{recipes_dir}")
        # mmp's model presets (`model=lightgbm`), after the conf dir: a project's conf/model/NAME.yaml wins.
        from mmp.config.model_presets import SHIPPED_DIR

        search_path.append(provider="mmp-presets", path=f"file://{SHIPPED_DIR}")
        # Loose files go first so that `-c other/prod.yaml` wins over conf/env/prod.yaml.
        for var, scheme in ((RECIPE_FILE_VAR, "mmp-recipes"), (ENV_FILE_VAR, "mmp-env")):
            file = os.environ.get(var)
            if file:
                search_path.prepend(provider="mmp-cli", path=f"{scheme}://{os.path.abspath(file)}")
