"""The `mmp` command: a thin shell that turns words into a config request and runs one stage.

Heavy libraries (mlflow, bentoml, torch, xgboost, lightgbm) are imported inside the commands
that use them, so `mmp --help` and `mmp compile` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from mmp import __version__

EXIT_OK, EXIT_USER_ERROR = 0, 2  # as mmp.errors says; this shell imports no mmp module at start

EPILOG = """\
Overrides follow the flags, in Hydra's grammar: key=value, +key=value, ++key=value, ~key,
group=option (recipe=fraud/xgb env=prod), sweeps with -m (model.params.max_depth=3,5,8), and
Optuna searches with -m hydra/sweeper=optuna 'model.params.C=tag(log, interval(0.001, 100))'.
Hydra's own flags work too: --cfg job, --resolve, --info, --config-dir DIR, -m/--multirun.

exit codes: 0 ok, 2 bad input (config, recipe, override, data), 1 anything else,
3 drift past its alert limit with --fail-on-drift or monitoring.fail_on_alert (output written).
"""

# Hydra's short flags that argparse would read as `-c d` / `-p ...`: handed to Hydra untouched.
_HYDRA_SHORT_WITH_VALUE = ("-cd", "-cn", "-cp")


def _compose_flags(parser: argparse.ArgumentParser, recipe: bool = True) -> None:
    """Seed-style flags shared by every command that composes a config."""
    if recipe:
        parser.add_argument("-r", "--recipe", metavar="FILE", help="recipe file (default: recipe=NAME or $RECIPE_PATH)")
        parser.add_argument("-d", "--data", metavar="URI", help="training data URI; sets data.source")
        parser.add_argument("-p", "--params", metavar="JSON", help='overrides as JSON, e.g. \'{"max_depth": 5}\'')
    parser.add_argument("-c", "--config", metavar="FILE", help="env file (default: env=NAME or $CONFIG_PATH)")


def _model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", metavar="ID", help="the training run whose model to use (default: $MODEL_RUN_ID)")
    parser.add_argument("--model-uri", metavar="URI", help="runs:/ID/model, models:/NAME@ALIAS or models:/NAME/VERSION")


def _drift_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 3 (output written) when a column's PSI "
                        "reaches its alert limit (also: monitoring.fail_on_alert=true)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmp", description="Modern ML Pipeline: recipes in YAML -> trained, logged, served models.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"mmp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, epilog=EPILOG, allow_abbrev=False,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        sub.set_defaults(handler=handler)
        return sub

    compile_ = command("compile", "print the resolved config and the pipeline plan; run nothing", _run_compile)
    _compose_flags(compile_)

    validate = command("validate", "check a recipe and env (and the data's columns); exit 0 or explain", _run_validate)
    _compose_flags(validate)
    validate.add_argument("--no-data", action="store_true", help="do not read the data to check its columns")

    train = command("train", "compile, fit, evaluate and log to MLflow; prints the run id last", _run_train)
    _compose_flags(train)
    train.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only the run id")

    batch = command("batch-inference", "predict a dataset with a logged model; writes parquet, csv or json",
                    _run_batch_inference)
    _model_flags(batch)
    batch.add_argument("-d", "--data", metavar="URI", required=True, help="input data (csv, parquet, json; any fsspec URI)")
    batch.add_argument("-o", "--output", metavar="URI", help="output file or folder (default: the env's output.path)")
    batch.add_argument("--chunk-rows", type=int, metavar="N", help="rows per chunk (default: the env's output.chunk_rows)")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress, only the output URI")
    batch.add_argument("-p", "--params", metavar="JSON", dest="query_params", help="a .sql input's template parameters")
    batch.add_argument("--engine", choices=["local", "spark"],
                       help="local: this process, streaming; spark: a Spark session (default: the env's batch.engine)")
    _drift_flags(batch)
    _compose_flags(batch, recipe=False)

    monitor = command("monitor", "a dataset's drift vs the model's training data (PSI); logs a drift run", _run_monitor)
    _model_flags(monitor)
    monitor.add_argument("-d", "--data", metavar="URI", required=True, help="data to check (a batch output: predictions)")
    monitor.add_argument("-o", "--output", metavar="URI", help="also write the report as JSON here")
    monitor.add_argument("-q", "--quiet", action="store_true", help="no summary, only the overall status")
    _drift_flags(monitor)
    _compose_flags(monitor, recipe=False)

    serve = command("serve-api", "serve a logged model over HTTP with BentoML", _run_serve_api)
    _model_flags(serve)
    serve.add_argument("--host", help="address to bind (default: the env's serving.host)")
    serve.add_argument("--port", type=int, help="port (default: the env's serving.port)")
    serve.add_argument("--workers", type=int, help="worker processes (default: the env's serving.workers)")
    _compose_flags(serve, recipe=False)

    build = command("build", "make a Bento (bentoml build) holding the run's model and mmp's service", _run_build)
    _model_flags(build)
    _compose_flags(build, recipe=False)

    promote = command("promote", "register a run's model and point an alias at it (champion), through registry.gate",
                      _run_registry)
    promote.add_argument("--run-id", metavar="ID", required=True, help="the training run whose model to promote")
    promote.add_argument("--alias", required=True, help="the alias to point at it, e.g. champion")
    promote.add_argument("--force", action="store_true", help="skip registry.gate (recorded in a version tag)")
    models = command("models", "registered models: versions, aliases, run ids, test metric", _run_registry)
    for sub in (promote, models):
        sub.add_argument("--name", help="registered model (promote: mlflow.registered_model_name, else the recipe's)")
        _compose_flags(sub, recipe=False)

    init = command("init", "write a new project that trains as-is (conf/, recipes/, data/, Dockerfile, ...)", _run_init)
    init.add_argument("name", metavar="NAME", help="the folder to create")
    init.add_argument("--force", action="store_true", help="write into a folder that is not empty")

    list_ = command("list", "what a recipe can name, and which recipes and envs exist", _run_list)
    list_.add_argument("what", choices=["models", "preprocessors", "metrics", "recipes", "envs"])
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `mmp` console script."""
    from mmp.errors import stop_on_sigterm

    stop_on_sigterm()  # as a process of its own: SIGTERM unwinds, closing runs and removing temp files
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(argv: list[str]) -> int:
    """Run one command line; return its exit code."""
    hydra_args, words = [], []
    it = iter(argv)
    for word in it:  # keep Hydra's -cd/-cn/-cp (and their values) away from argparse
        if word in _HYDRA_SHORT_WITH_VALUE:
            hydra_args += [word, next(it, "")]
        else:
            words.append(word)
    parser = build_parser()
    args, extra = parser.parse_known_args(words)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    unknown = [w for w in extra if w.startswith("-") and w.split("=", 1)[0] not in _HYDRA_FLAGS]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    from mmp.errors import Terminated, report
    from mmp.masking import configure_logging

    configure_logging(args.verbose)

    try:
        return args.handler(args, extra + hydra_args) or EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Terminated as stopped:
        print(f"mmp: stopped by signal {stopped.signum}; nothing half-done was left behind", file=sys.stderr)
        return 128 + stopped.signum
    except BrokenPipeError:  # `mmp list models | head`: the reader left, which is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # report, never dump a traceback unless asked
        return report(exc, args.verbose)


# Hydra flags mmp passes on (the rest of Hydra's flags are taken by mmp's own, e.g. -c, -p, -r).
_HYDRA_FLAGS = {"--cfg", "--resolve", "--package", "--info", "-i", "--config-dir", "--config-name",
                "--config-path", "-m", "--multirun", "--hydra-help", "--shell-completion", "-sc",
                "--experimental-rerun"}


def _request(args: argparse.Namespace, words: list[str], with_recipe: bool = True):
    from mmp.config.request import build_request

    return build_request(
        words,
        recipe_file=getattr(args, "recipe", None),
        env_file=getattr(args, "config", None),
        data_uri=getattr(args, "data", None) if with_recipe else None,
        params_json=getattr(args, "params", None),
        with_recipe=with_recipe,
    )


def _model_uri(args: argparse.Namespace) -> str:
    from mmp.models.logged import model_uri

    return model_uri(args.run_id, args.model_uri)


def _run_compile(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.training.commands import compile_command

    compile_command(_request(args, words))
    return EXIT_OK


def _run_validate(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.training.commands import validate_command

    validate_command(_request(args, words), read_data=not args.no_data)
    return EXIT_OK


def _run_train(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.training.commands import train_command

    train_command(_request(args, words), quiet=args.quiet)
    return EXIT_OK


def _run_batch_inference(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.inference.batch import batch_command

    from mmp.masking import scrub

    uri = _model_uri(args)
    if args.engine:  # sugar for the override batch.engine=...
        words = [f"++batch.engine={args.engine}", *words]
    print(scrub(batch_command(_request(args, words, with_recipe=False), uri, args.data, args.output, args.chunk_rows,
                        quiet=args.quiet, params_json=args.query_params, fail_on_drift=args.fail_on_drift)))
    return EXIT_OK


def _run_monitor(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.inference.monitor import monitor_command

    uri = _model_uri(args)
    print(monitor_command(_request(args, words, with_recipe=False), uri, args.data, args.output, quiet=args.quiet,
                          fail_on_drift=args.fail_on_drift))
    return EXIT_OK


def _run_serve_api(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.serving.serve_api import serve_command

    uri = _model_uri(args)
    serve_command(_request(args, words, with_recipe=False), uri, args.host, args.port, args.workers)
    return EXIT_OK


def _run_build(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.serving.build import build_command

    uri = _model_uri(args)
    print(build_command(_request(args, words, with_recipe=False), uri))
    return EXIT_OK


def _run_registry(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.training import registry

    request = _request(args, words, with_recipe=False)
    print(registry.promote_command(request, args.run_id, args.alias, args.name, args.force) if args.command == "promote"
          else registry.models_command(request, args.name))
    return EXIT_OK


def _run_init(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.project.init import init_command

    print(init_command(args.name, words, force=args.force))
    return EXIT_OK


def _run_list(args: argparse.Namespace, words: list[str]) -> int:
    from mmp.config.catalogue import LISTINGS

    for row in LISTINGS[args.what]():
        print(row)
    return EXIT_OK
