"""Errors users read. A `UserError` exits 2 with its message and no traceback; anything else exits 1."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config: where, what, what is allowed, and which file said it."""

    path: str
    message: str
    allowed: str | None = None
    origin: str | None = None

    def __str__(self) -> str:
        text = f"{self.path or '<root>'}: {self.message}"
        if self.allowed:
            text += f"; {self.allowed}"
        if self.origin:
            text += f" (from {self.origin})"
        return text


class UserError(Exception):
    """Bad input: config, recipe, override, data schema, unknown run id. Exit code 2."""


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM, as Kubernetes sends): unwinds like Ctrl-C, so runs
    are closed and half-written files removed on the way out. Exit code 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises `Terminated` in the main thread (call it from the main thread)."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)


class ConfigError(UserError):
    """Every problem found in one pre-flight pass, reported together."""

    def __init__(self, problems: Iterable[Problem], source: str = "config") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"{count} problem{'s' if count != 1 else ''} in the {source}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def did_you_mean(given: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest of `choices` to `given`, if any is close enough to be a likely typo."""
    close = difflib.get_close_matches(str(given), [str(c) for c in choices], n=1, cutoff=cutoff)
    return close[0] if close else None


def allowed_text(choices: Iterable[str], given: str | None = None, limit: int = 30) -> str:
    """'did you mean X? allowed: a, b, c' — the hint part of a Problem."""
    choices = sorted({str(c) for c in choices})
    hint = did_you_mean(given, choices) if given is not None else None
    shown = ", ".join(choices[:limit]) + (f", ... ({len(choices) - limit} more)" if len(choices) > limit else "")
    text = f"allowed: {shown}" if choices else ""
    return f"did you mean '{hint}'? {text}".strip() if hint else text


EXIT_OK, EXIT_FAILURE, EXIT_USER_ERROR = 0, 1, 2


class ResultError(Exception):
    """The command did its work and still fails on purpose (a drift alert): `mmp` prints `stdout`
    (what it produced), the message, and exits `exit_code`."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, stdout: str = ""):
        super().__init__(message)
        self.stdout = stdout


def is_user_error(exc: BaseException) -> bool:
    """Bad input (exit 2) rather than a failure of mmp or of a service (exit 1)."""
    import sys

    if isinstance(exc, UserError):
        return True
    omegaconf = sys.modules.get("omegaconf.errors")
    hydra = sys.modules.get("hydra.errors")
    yaml = sys.modules.get("yaml")
    return bool((omegaconf and isinstance(exc, omegaconf.OmegaConfBaseException))
                or (hydra and isinstance(exc, hydra.HydraException))
                or (yaml and isinstance(exc, yaml.YAMLError)))


def report(exc: BaseException, verbose: bool) -> int:
    """Tell the user what went wrong, in one scrubbed line (the traceback only when `verbose`); the exit code."""
    import sys
    import traceback

    from mmp.masking import scrub

    if isinstance(exc, ResultError):
        print(scrub(exc.stdout))
        print(f"mmp: {scrub(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if verbose:
        print(scrub("".join(traceback.format_exception(exc))), end="", file=sys.stderr)
    if is_user_error(exc):
        print(f"mmp: error: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"mmp: failed: {type(exc).__name__}: {scrub(str(exc))}", file=sys.stderr)
    if not verbose:
        print("(run with --verbose for the traceback)", file=sys.stderr)
    return EXIT_FAILURE
