"""Keep secrets out of what mmp prints and logs.

A value is secret when the config takes it from the environment (`${oc.env:VAR}`) or when its
key looks like a credential (password, token, secret, ...). Secret leaves are shown as the
interpolation that produced them (`${oc.env:DB_PASSWORD}`) or `***`; any other string that
contains a secret value, and any URL's password, is masked too.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|credential|private[_-]?key)", re.I)
_ENV_REF = re.compile(r"\$\{oc\.env:([^,}]+)")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s/]+)(?P<at>@)", re.I)


def is_secret_key(key: str) -> bool:
    """Whether a key's value is a credential (`password`, `api_key`), not the name of the
    variable that holds one (`token_env`)."""
    key = str(key).lower()
    return bool(_SECRET_KEY.search(key)) and not key.endswith(("_env", "_var", "_variable"))


def masked_container(cfg: Any) -> Any:
    """A plain dict/list copy of an OmegaConf config, resolved, with every secret masked."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    secrets: set[str] = set()
    shown = _mask_leaves(raw, resolved, secrets, key="")
    return scrub(shown, secrets)


def _mask_leaves(raw: Any, resolved: Any, secrets: set[str], key: str) -> Any:
    if isinstance(resolved, dict):
        return {k: _mask_leaves((raw or {}).get(k), v, secrets, str(k)) for k, v in resolved.items()}
    if isinstance(resolved, list):
        raw = raw if isinstance(raw, list) else [None] * len(resolved)
        return [_mask_leaves(r, v, secrets, key) for r, v in zip(raw, resolved)]
    if isinstance(raw, str) and "${oc.env:" in raw:
        # Only what the environment really holds is secret; a default written in the file is not.
        secrets.update(os.environ[var] for var in _ENV_REF.findall(raw) if os.environ.get(var))
        return raw
    if is_secret_key(key) and resolved not in (None, ""):
        secrets.add(str(resolved))
        return MASK
    return resolved


def scrub(value: Any, secrets: set[str] | frozenset[str] = frozenset()) -> Any:
    """`value` with URL passwords masked and every known secret string replaced, recursively."""
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["at"], value)
        if "${oc.env:" in text:
            return text  # the interpolation itself names the variable, not its value
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, MASK)
        return text
    return value
