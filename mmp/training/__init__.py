"""Training: `compiler.compile` turns a checked config into a `pipeline.Pipeline` of stage objects
(`stages`, `log`) that `mmp train` runs; splits, preprocessing, metrics, plots and sweeps."""
