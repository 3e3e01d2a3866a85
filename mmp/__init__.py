"""mmp: Modern ML Pipeline, a declarative config compiler for tabular machine learning.

The package is grouped by stage, data flowing one way; a module imports only from its own stage
and earlier ones (tests/test_layout.py checks it):

    errors, masking   what every stage shares: errors users read, secrets kept out of output
    io                where bytes live: readers, writers, the MLflow store
    config            overrides -> composed config -> typed, checked spec; the recipe vocabulary
    models            what gets logged and loaded: the tabular pyfunc, mmp's own estimators
    training          compile -> pipeline of stages -> MLflow run (train, sweeps)
    inference         batch inference with a logged model
    serving           the BentoML service and `mmp serve-api` / `mmp build`
    project           `mmp init` and its templates
    cli               the `mmp` command: parses words, dispatches to a stage
"""

__version__ = "0.1.0"
