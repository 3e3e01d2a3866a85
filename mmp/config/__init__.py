"""Configuration: the command line as a request (`request`), Hydra composition (`compose`, with
its errors in mmp's words: `hydra_errors`), the typed spec (`spec`), the checks run before any work
(`checks`, `data_checks`, `env`), and what a recipe can name (`catalogue`, `estimators`)."""
