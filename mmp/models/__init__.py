"""What a run logs and what is loaded back: the tabular model (`tabular`) and its MLflow face
(`mlflow_model`), finding a logged model (`logged`), its pip requirements, and mmp's own
estimators (`mlp`: the torch multi-layer perceptron)."""
