"""Hydra's and OmegaConf's errors, told the way mmp tells its own.

Hydra reports a bad override or an unknown option in its own words ("Key 'x' is not in struct",
"Config group override must be a string or a list. Got int"); a user reads instead the key path,
what is wrong, what is allowed, and the override or file it came from.
"""

from __future__ import annotations

import re
from typing import Any

from mmp.errors import Problem, allowed_text, did_you_mean

FORMS = ("the forms are key=value (change a key), +key=value (add one), ++key=value (add or change), "
         "~key (delete one) and group=option (recipe=NAME, env=NAME)")
VALUES = ("a value is a number, true/false, null, text (quoted if it holds spaces or ,:=[]{}: 'a b'), "
          "a list [a,b] or a mapping {k: v}")
SWEEPS = ("a sweep (with -m) is a,b,c, choice(a,b,c) or range(start,stop[,step]); with hydra/sweeper=optuna also "
          "interval(low,high), tag(log, interval(low,high)) or tag(int, interval(low,high))")
_SWEEP_FUNCTION = re.compile(r"\b(choice|range|interval|tag|shuffle|sort|glob)\s*\(")
# Hydra's words for an override it could not apply -> what is wrong, and what to write instead.
_REWORDED = [
    (r"Sweep parameters '.*' requires --multirun", "a search runs only with -m/--multirun", "add -m"),
    (r"BasicSweeper does not support sweep type", "an interval is searched by the optuna sweeper, not by "
     "Hydra's basic (grid) sweeper", "add hydra/sweeper=optuna, or list the values: {key}=a,b,c or range(start,stop)"),
    (r"Could not delete from config\. The value of '[^']*' is (?P<have>.*) and not (?P<given>.*)\.$",
     "its value is {have}, not {given}", "write '~{key}' to delete it whatever its value"),
    (r"Could not delete '[^']*'\. No match in the defaults list",
     "that option is not the one chosen, so it cannot be deleted", "write '~{key}' to drop whichever is chosen"),
    (r"Could not append to config", "already has a value, so '+' cannot add it",
     "write '{key}={value}' to change it or '++{key}={value}' to add or change it"),
    (r"Multiple values for", "an option is chosen already, and '+' would add a second one",
     "write '{key}={value}' to choose another"),
    (r"force-add of config groups", "'++' does not apply to a config group", "write '{key}={value}' to choose an option"),
    (r"Ambiguous value for argument", "several values make a sweep, which runs only with -m/--multirun",
     "add -m to sweep, or write {key}=[{value}] for a list or {key}='{value}' for text"),
]
# OmegaConf's node types in the user's words.
_KINDS = {"DictConfig": "a mapping", "ListConfig": "a list"}


def override_key(override: str) -> str:
    """The key or group an override names: `+model.params.C=1` -> `model.params.C`, `~env` -> `env`."""
    return override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


def bad_override(override: str, what: str, hint: str = FORMS) -> str:
    """'override 'X': what is wrong; which forms are allowed'."""
    return f"override '{override}': {what}; {hint}"


def message(exc: BaseException, request: Any, choices: dict[str, Any] | None = None) -> str:
    """What a user reads for `exc`, raised by Hydra or OmegaConf while composing `request`."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, OverrideParseException):
        return _unparsable(exc.override, exc.message)
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        return _unknown_option(exc, request)
    if isinstance(exc, OmegaConfBaseException):
        return str(_value_problem(exc, request, request.choices() if choices is None else choices))
    return _composition_problem(exc, request)


def _unparsable(override: str, hydra_text: str) -> str:
    """An override Hydra's grammar cannot read: the override, the parser's complaint, the forms and values."""
    lines = [line.strip() for line in hydra_text.splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith(("Error parsing override", "See https://"))), "")
    detail = detail.replace("LexerNoViableAltException: ", "unexpected character in ")
    if "=" not in override and not override.startswith("~"):
        return bad_override(override, "it has no '=' between a key and a value")
    key, _, value = override.partition("=")
    if _SWEEP_FUNCTION.search(value):  # a sweep expression: say what a sweep may be
        return str(Problem(override_key(key), f"cannot read {value}" + (f" ({detail})" if detail else ""), SWEEPS,
                           f"override '{override}'"))
    return bad_override(override, f"cannot read it ({detail})" if detail else "cannot read it", f"{FORMS}; {VALUES}")


def _unknown_option(exc: Any, request: Any) -> str:
    """`env=prdo`, `recipe=nosuch`: the group, the option, a did-you-mean and the options there are."""
    from mmp.config.request import shown_path

    missing = exc.missing_cfg_file
    culprit = next((o for o in reversed(request.overrides)
                    if override_key(o) and "." not in override_key(o) and missing.startswith(override_key(o) + "/")), None)
    if culprit:
        group = override_key(culprit)
    else:  # a default from config.yaml's defaults list
        parts = missing.split("/")
        group = "/".join(parts[:2] if parts[0] == "hydra" and len(parts) > 2 else parts[:1])
    option = missing[len(group) + 1:]
    options = list(exc.options or _groups(request).get(group, []))
    hint = did_you_mean(option, options)
    origin = f"override '{culprit}'" if culprit else shown_path(request.conf_dir / "config.yaml")
    text = str(Problem(group, f"there is no {group} option '{option}'", f"did you mean '{hint}'?" if hint else None, origin))
    if options:
        return text + f"\nAvailable options in '{group}':\n" + "\n".join("\t" + o for o in options)
    return text + f"\nthere are no options in '{group}'"


def _composition_problem(exc: BaseException, request: Any) -> str:
    """An override Hydra could not apply: name it, say why, and say what to write instead."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    from mmp.config.model_presets import PRESET_KEY

    text = str(exc).strip().replace(PRESET_KEY + ".", "")  # keys as the user wrote them, not as aimed at a preset
    cause = exc.__cause__
    culprit = _culprit(text, request.overrides)
    if culprit is None and text.startswith("BasicSweeper does not support"):  # it does not say which key
        culprit = next((o for o in request.overrides if "interval(" in o.partition("=")[2]), None)
    if isinstance(exc, ValueError) and text.startswith("Config group override"):
        return _group_value(request) or text
    if culprit is None:  # not about one override (a file Hydra could not read, ...): Hydra's words
        detail = str(cause).strip() if cause is not None else ""
        return f"{text}\n{detail}" if detail and detail not in text else text
    key = override_key(culprit)
    origin = f"override '{culprit}'"
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):  # "Could not override 'x'": no such key
        leaf = str(cause.key) if cause.key is not None else key.rsplit(".", 1)[-1]
        allowed = allowed_text(_keys(cause.parent_node, key), leaf)
        hint = f"{allowed}; to add it, write '+{culprit}'" if allowed else f"to add it, write '+{culprit}'"
        return str(Problem(key, f"there is no key '{leaf}' to change", hint, origin))
    if isinstance(cause, OmegaConfBaseException):  # "Error merging override x"
        return str(Problem(cause.full_key or key, *_merge_text(cause), origin))
    if re.match(r"Could not delete from config\. '.*' does not exist", text):
        parent, _, leaf = key.rpartition(".")
        allowed = allowed_text(_keys(_node_at(request, parent, without=culprit), key), leaf)
        return str(Problem(key, "there is no such key to delete", allowed or None, origin))
    for pattern, what, instead in _REWORDED:
        match = re.match(pattern, text, re.S)
        if match:
            fields = {"key": key, "value": culprit.partition("=")[2], **match.groupdict()}
            if "have" in fields and _secret(key):  # the value the config holds, e.g. a password
                fields["have"] = "***"
            return str(Problem(key, what.format(**fields), instead.format(**fields), origin))
    if culprit in text:  # Hydra's text names the override already
        return f"{text}\n{FORMS}"
    return bad_override(culprit, text.replace("\n", " "))


def _secret(key_path: str) -> bool:
    """Whether the value at `key_path` is a credential that no message may show."""
    from mmp.masking import NOT_SECRET, SECRET_SECTIONS, is_secret_key

    *sections, leaf = key_path.split(".")
    return is_secret_key(leaf) or (bool(set(sections) & SECRET_SECTIONS) and leaf not in NOT_SECRET)


def _culprit(text: str, overrides: list[str]) -> str | None:
    """The override a Hydra message is about: quoted whole, or its key named."""
    for override in reversed(overrides):
        if override in text:
            return override
    for override in reversed(overrides):
        key = override_key(override)
        if key and re.search(rf"(?<![\w./]){re.escape(key)}(?![\w/])", text):
            return override
    return None


def _keys(node: Any, key: str) -> list[str]:
    """The keys of a config node, without Hydra's own settings unless the user is editing them."""
    if not hasattr(node, "keys"):
        return []
    return [str(k) for k in node.keys() if k != "hydra" or key.startswith("hydra")]


def _merge_text(cause: Any) -> tuple[str, str | None]:
    """What is wrong with a value Hydra could not merge in, and what to give instead."""
    msg = (cause.msg or str(cause)).splitlines()[0]
    match = re.match(r"Cannot merge (\w+) with (\w+)", msg)
    if match:
        have, given = (_KINDS.get(t, t) for t in match.groups())
        return f"it holds {have} and cannot take {given}", f"give {have}"
    return msg[:1].lower() + msg[1:], None


def _group_value(request: Any) -> str | None:
    """`env=3`: a group takes an option name, not a number or a mapping."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = _groups(request)
    for override in OverridesParser.create().parse_overrides(request.overrides):
        group = override.key_or_group
        value = override.value()
        if group in groups and not isinstance(value, (str, list)):
            options = groups[group]
            return str(Problem(group, f"{value!r} is not an option name", f"write {group}=NAME; {allowed_text(options)}",
                               f"override '{override.input_line}'"))
    return None


def _groups(request: Any) -> dict[str, list[str]]:
    """Each config group (recipe, and each folder of conf/) with its options."""
    from mmp.config.catalogue import _yaml_files

    def options(folder: Any) -> list[str]:
        return [p.relative_to(folder).with_suffix("").as_posix() for p in _yaml_files(folder)] if folder.is_dir() else []

    from mmp.config.model_presets import GROUP, preset_files

    found = {"recipe": options(request.recipes_dir)}
    for folder in sorted(request.conf_dir.iterdir()):
        if folder.is_dir() and not folder.name.startswith("."):
            found[folder.name] = options(folder)
    found[GROUP] = list(preset_files(request.conf_dir))  # the project's presets and mmp's own
    return found


def _node_at(request: Any, path: str, without: str) -> Any:
    """The node at `path` of the config composed again without the override `without` (None if that fails)."""
    import dataclasses

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mmp.config.model_presets import PRESET_KEY, aim_at_preset

    rest = dataclasses.replace(request, overrides=[o for o in request.overrides if o != without])
    try:
        with initialize_config_dir(config_dir=str(request.conf_dir), version_base=None):
            cfg = compose("config", overrides=rest.hydra_overrides())
    except Exception:  # only a hint is lost
        return None
    if path and PRESET_KEY in cfg:  # a chosen preset holds `model` and `tune.params`
        path = aim_at_preset(path)
    return OmegaConf.select(cfg, path) if path else cfg


def _written_at(request: Any, needle: str, choices: dict[str, Any]) -> str | None:
    """The key path whose value holds `needle`: in an override, else in the recipe, env or main config file."""
    from mmp.config.request import yaml_data

    for override in reversed(request.overrides):
        if needle in override.partition("=")[2]:
            return override_key(override)

    def find(node: Any, prefix: str) -> str | None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            path = f"{prefix}.{key}" if prefix else str(key)
            found = path if isinstance(value, str) and needle in value else find(value, path)
            if found:
                return found
        return None

    for file in (*request.files(choices), request.conf_dir / "config.yaml"):
        found = find(yaml_data(file), "") if file is not None else None
        if found:
            return found
    return None


def _value_problem(exc: Any, request: Any, choices: dict[str, Any]) -> Problem:
    """An OmegaConf error about one value (an interpolation that does not resolve, a missing value)."""
    msg = (exc.msg or str(exc) or type(exc).__name__).strip().splitlines()[0]
    path = exc.full_key
    env_var = re.search(r"Environment variable '([^']+)' not found", msg)
    ref = re.search(r"Interpolation key '([^']+)' not found", msg)
    resolver = re.search(r"Unsupported interpolation type (\S+)", msg)
    needle = f"oc.env:{env_var[1]}" if env_var else (ref[1] if ref else (resolver[1] if resolver else None))
    if not path and needle:  # OmegaConf.resolve (--cfg job --resolve) does not say where: look for it
        path = _written_at(request, needle, choices)
    origin = request.origin(path, choices) if path else None
    if env_var:
        name = env_var[1]
        return Problem(path or "", f"environment variable {name} is not set",
                       f"set it, or give a default: ${{oc.env:{name},DEFAULT}}", origin)
    if ref:
        return Problem(path or "", f"${{{ref[1]}}} refers to a key that is not in the config",
                       "point it at a key that is (see 'mmp compile --cfg job')", origin)
    if resolver:
        from omegaconf.basecontainer import BaseContainer

        known = getattr(BaseContainer, "_resolvers", {})  # OmegaConf keeps no public list of its resolvers
        return Problem(path or "", f"unknown resolver '{resolver[1]}'", allowed_text(known, resolver[1]) or None, origin)
    if type(exc).__name__ == "MissingMandatoryValue":
        return Problem(path or "", "has no value (???)", f"set one: {path or 'key'}=VALUE", origin)
    return Problem(path or "", msg[:1].lower() + msg[1:], None, origin)
