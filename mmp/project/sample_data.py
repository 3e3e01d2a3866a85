"""Small real datasets, written from scikit-learn's bundled copies (no download), for the example recipes."""

from __future__ import annotations

from pathlib import Path

# file name -> (loader name in sklearn.datasets, target column name)
DATASETS = {
    "breast_cancer.csv": ("load_breast_cancer", "diagnosis"),
    "iris.csv": ("load_iris", "species"),
    "diabetes.csv": ("load_diabetes", "progression"),
    "wine.csv": ("load_wine", "cultivar"),
}


def _frame(loader_name: str, target: str):
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)(as_frame=True, **({"scaled": False} if loader_name == "load_diabetes" else {}))
    frame = bunch.frame.rename(columns={"target": target})
    frame.columns = [str(c).strip().replace(" ", "_").replace("/", "_").replace("(", "").replace(")", "") for c in frame.columns]
    if hasattr(bunch, "target_names") and loader_name != "load_diabetes":
        # Class labels as the dataset names them (setosa, malignant, ...), not bare integers.
        frame[target] = [str(bunch.target_names[i]) for i in frame[target]]
    frame.insert(0, "id", range(1, len(frame) + 1))
    return frame


def write_sample_data(dest: str | Path) -> list[Path]:
    """Write every example dataset as CSV into `dest`; return the paths written."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, (loader_name, target) in DATASETS.items():
        path = dest / file_name
        _frame(loader_name, target).to_csv(path, index=False)
        written.append(path)
    return written
