"""Where bytes live: tabular readers (`readers`), atomic writers (`writers`) and the MLflow store (`tracking`)."""
