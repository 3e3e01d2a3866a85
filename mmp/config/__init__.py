"""Configuration: Hydra composition (`compose`), the typed spec (`spec`), the checks run before any
work (`checks`), and what a recipe can name (`catalogue`, `estimators`)."""
