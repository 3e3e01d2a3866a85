"""From a composition request to resolved configs: Hydra composes, mmp runs a task per job.

Hydra itself composes, so every override form, `--cfg job`, `--resolve` and `-m` behave as in
Hydra; its errors come out worded as mmp's own (`hydra_errors`), and what its `--cfg`/`--info`
print passes through `scrub` first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
from typing import Any, Callable, Iterator

from mmp.config.request import _ENV_FILE_VAR, _INFO_TOPICS, _RECIPE_FILE_VAR, Request
from mmp.errors import UserError


@contextlib.contextmanager
def _environment(request: Request) -> Iterator[None]:
    """Point the search path plugin at this request's files; restore the environment after."""
    wanted = {
        _RECIPE_FILE_VAR: str(request.recipe_file) if request.recipe_file else None,
        _ENV_FILE_VAR: str(request.env_file) if request.env_file else None,
        "HYDRA_FULL_ERROR": "1",  # let errors reach mmp, which reports them as exit 2
    }
    saved = {key: os.environ.get(key) for key in wanted}
    saved_argv = sys.argv
    try:
        for key, value in wanted.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        sys.argv = saved_argv
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _TaskError(Exception):
    """Carries an exception raised by mmp's own task through Hydra, to tell it from Hydra's."""


def run(request: Request, task: Callable[[Any], Any], prog: str = "mmp") -> Any:
    """Compose with Hydra (all of its flags and override forms apply) and call `task(cfg)` for each
    job; return the last job's result. Hydra's own errors (bad override, unknown option) and the
    task's `UserError`s come out as `UserError`."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from mmp.config import hydra_errors

    results: list[Any] = []
    failures: list[BaseException] = []

    def task_function(cfg: Any) -> Any:
        try:
            value = task(cfg)
        except Exception as exc:
            if isinstance(exc, OmegaConfBaseException):  # e.g. an interpolation that does not resolve
                exc = _job_error(exc, request)
            if request.multirun:  # the sweeper hears of it: the basic one stops, the optuna one goes on
                raise _TaskError() from exc
            failures.append(exc)  # a single run reports through mmp, not through Hydra's job log
            return None
        results.append(value)
        return value

    task_function.__module__ = "mmp"
    main = hydra.main(version_base=None, config_path=str(request.conf_dir), config_name="config")(task_function)
    printed = io.StringIO() if _prints_config(request) else None
    if printed is not None:
        _learn_secrets(request, prog)
    try:
        with _environment(request), \
                contextlib.redirect_stdout(printed) if printed is not None else contextlib.nullcontext():
            sys.argv = [prog, *request.hydra_flags, *request.hydra_overrides()]
            main()
    except _TaskError as exc:
        raise exc.__cause__ from None
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(hydra_errors.message(exc, request)) from exc
    except ValueError as exc:  # a group given a number (env=3), or Hydra's flag checks (--resolve without --cfg)
        group_value = str(exc).startswith("Config group override")
        raise UserError(hydra_errors.message(exc, request) if group_value else str(exc)) from exc
    finally:
        if printed is not None:  # Hydra's --cfg / --info print the config: never a secret in clear
            _print_scrubbed(printed)
    if failures:
        raise failures[0]
    return results[-1] if results else None


# Hydra flags that print the composed config (with their value-taking companions).
_PRINTING_FLAGS = {"--cfg": True, "--package": True, "--info": None, "-i": None, "--resolve": False}


def _print_scrubbed(printed: io.StringIO) -> None:
    """What Hydra's --cfg / --info printed, with every secret masked, on the real stdout."""
    from mmp.masking import scrub

    text = scrub(printed.getvalue())
    print(text, end="")


def _prints_config(request: Request) -> bool:
    return any(flag.split("=", 1)[0] in ("--cfg", "--info", "-i") for flag in request.hydra_flags)


def _learn_secrets(request: Request, prog: str) -> None:
    """Compose once without the printing flags and mask the result, so that every secret value of
    this config is known to `scrub` before Hydra prints the config its own way."""
    from mmp.masking import masked_container

    flags, i = [], 0
    while i < len(request.hydra_flags):
        flag = request.hydra_flags[i]
        name = flag.split("=", 1)[0]
        takes = _PRINTING_FLAGS.get(name, False)
        if name in _PRINTING_FLAGS:
            nxt = request.hydra_flags[i + 1] if i + 1 < len(request.hydra_flags) else None
            if "=" not in flag and nxt is not None and (takes is True or (takes is None and nxt in _INFO_TOPICS)):
                i += 1
        else:
            flags.append(flag)
        i += 1
    quiet = dataclasses.replace(request, hydra_flags=flags)
    try:
        run(quiet, masked_container, prog)
    except UserError:
        pass  # the real run reports it


def _job_error(exc: BaseException, request: Request) -> UserError:
    """An OmegaConf error inside a job, told with the key path and the file or override it came from."""
    from hydra.core.hydra_config import HydraConfig

    from mmp.config import hydra_errors

    error = UserError(hydra_errors.message(exc, request, dict(HydraConfig.get().runtime.choices)))
    error.__cause__ = exc
    return error
