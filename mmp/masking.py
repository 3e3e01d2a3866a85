"""Keep secrets out of what mmp prints and logs.

A value is secret when
- its key looks like a credential (password, token, secret, api_key, ...), or it comes from an
  environment variable whose name does (`${oc.env:DB_PASSWORD}`); a value taken from the
  environment is always shown as its interpolation;
- it sits under a connection-settings section (`storage_options`, `headers`, `connection`,
  `credentials`, ...), unless its key is on a short allow-list of settings that are never
  secret (`endpoint_url`, `region_name`, `anon`, ...): an S3 access key id (`key`), an Azure
  `account_key` or `connection_string`, an `Authorization` header, an `auth: [user, password]`
  pair are all masked, and so is any key a new filesystem may invent.
Every secret found is remembered for the rest of the process, so `scrub()` also removes it from
any other text (an error message, a log line); and in every URL the password of the user-info
part and the values of signature/token query parameters are masked.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|account[_-]?key|credential"
                         r"|private[_-]?key|connection[_-]?string|sas|signature|authorization|^auth$)", re.I)
# Sections whose values are connection settings: secret unless the key is known to be harmless.
SECRET_SECTIONS = frozenset({"storage_options", "headers", "connection", "connection_args", "connect_args",
                             "credentials", "auth", "client_kwargs", "config_kwargs"})
NOT_SECRET = frozenset({
    "endpoint", "endpoint_url", "region", "region_name", "anon", "use_ssl", "verify", "requester_pays",
    "project", "location", "default_location", "account_name", "version_aware", "cache_type", "block_size",
    "default_block_size", "default_fill_cache", "timeout", "connect_timeout", "read_timeout", "retries",
    "max_attempts", "s3_additional_kwargs", "client_kwargs", "config_kwargs", "addressing_style",
    "signature_version", "host", "port", "database", "dbname", "schema", "sslmode", "user", "username",
    "content-type", "accept", "user-agent",
})
_ENV_REF = re.compile(r"\$\{oc\.env:([^,}]+)")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<at>@)", re.I)
_QUERY_SECRET = re.compile(r"(?P<head>[?&](?:sig|signature|token|access_token|api_key|apikey|key|password|secret"
                           r"|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature"
                           r"|x-goog-credential)=)(?P<value>[^&#\s]+)", re.I)

# Every secret value seen in this process (from masked configs): scrub() removes them anywhere.
_KNOWN: set[str] = set()


def is_secret_key(key: str) -> bool:
    """Whether a key's value is a credential (`password`, `api_key`), not the name of the
    variable that holds one (`token_env`)."""
    key = str(key).lower()
    return bool(_SECRET_KEY.search(key)) and not key.endswith(("_env", "_var", "_variable"))


def remember(*secrets: Any) -> None:
    """Add secret values that scrub() must remove from any text this process prints."""
    _KNOWN.update(str(s) for s in secrets if s not in (None, "") and len(str(s)) >= 4)


def masked_container(cfg: Any) -> Any:
    """A plain dict/list copy of an OmegaConf config, resolved, with every secret masked."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    secrets: set[str] = set()
    shown = _mask_leaves(raw, resolved, secrets, key="", in_section=False)
    remember(*secrets)
    return scrub(shown, secrets)


def _mask_leaves(raw: Any, resolved: Any, secrets: set[str], key: str, in_section: bool) -> Any:
    lowered = str(key).lower()
    names_a_variable = lowered.endswith(("_env", "_var", "_variable"))  # `token_env: MMP_API_TOKEN`
    if isinstance(resolved, dict):
        inner = in_section or lowered in SECRET_SECTIONS
        return {k: _mask_leaves((raw if isinstance(raw, dict) else {}).get(k), v, secrets, str(k), inner)
                for k, v in resolved.items()}
    if isinstance(resolved, list):
        raw = raw if isinstance(raw, list) else [None] * len(resolved)
        whole = not names_a_variable and (in_section and lowered not in NOT_SECRET or is_secret_key(lowered)
                                          or lowered in SECRET_SECTIONS)
        return [_mask_leaves(r, v, secrets, key if whole else "", whole) for r, v in zip(raw, resolved)]
    if isinstance(resolved, str):
        secrets.update(url_secrets(resolved))
    secret = not names_a_variable and (is_secret_key(lowered) or (in_section and lowered not in NOT_SECRET))
    if isinstance(raw, str) and "${oc.env:" in raw:
        # Shown as the interpolation. What the environment holds is a secret where the key or the
        # variable's name says so (a tracking URI from MLFLOW_TRACKING_URI is not; DB_PASSWORD is).
        for var in _ENV_REF.findall(raw):
            if os.environ.get(var) and (secret or is_secret_key(var)):
                secrets.add(os.environ[var])
        return raw
    if secret and resolved not in (None, "") and not isinstance(resolved, bool):
        secrets.add(str(resolved))
        return MASK
    return resolved


def scrub(value: Any, secrets: set[str] | frozenset[str] = frozenset()) -> Any:
    """`value` with URL passwords and query-string credentials masked and every known secret
    string (these `secrets` and all remembered ones) replaced, recursively."""
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        # `${oc.env:VAR}` names the variable, not its value: keep those pieces as written.
        pieces = _INTERPOLATION.split(value)
        return "".join(piece if piece.startswith("${oc.env:") else _scrub_text(piece, secrets) for piece in pieces)
    return value


_INTERPOLATION = re.compile(r"(\$\{oc\.env:[^}]*\})")


def _scrub_text(text: str, secrets: set[str] | frozenset[str]) -> str:
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK + m["at"], text)
    text = _QUERY_SECRET.sub(lambda m: m["head"] + MASK, text)
    for secret in sorted(set(secrets) | _KNOWN, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def url_secrets(uri: str) -> list[str]:
    """The password and credential query values inside a URL, to remember them as secrets."""
    found = [m["pw"] for m in _URL_PASSWORD.finditer(uri)]
    return found + [m["value"] for m in _QUERY_SECRET.finditer(uri)]


def configure_logging(verbose: bool) -> None:
    """mmp's own log lines go to stderr, secrets scrubbed; other libraries keep their own logging setup."""
    import logging

    logger = logging.getLogger("mmp")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    # MLflow narrates every store migration and model validation: only its errors, unless asked.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if verbose else "ERROR")
    # ... and draws a progress bar (tqdm, which Optuna installs) for every model it logs or loads.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


class ScrubbingFormatter:
    """A log formatter that never lets a known secret or a URL password through."""

    def __init__(self, fmt: str):
        import logging

        self.inner = logging.Formatter(fmt)

    def format(self, record: Any) -> str:
        return scrub(self.inner.format(record))
