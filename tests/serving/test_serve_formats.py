"""The request bodies /predict/batch and the V2 route read, on the session's real `mmp serve-api`
(iris, at most 50 rows a batch): a row list, columns, MLflow's dataframe_split and the V2 protocol's
inputs all give the same predictions, each answered in its own shape, and a body that does not fit
gets a 4xx naming the field."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
LABELS = ("setosa", "versicolor", "virginica")
INFER = "/v2/models/iris/infer"


@pytest.fixture(scope="module")
def flowers(workspace) -> pd.DataFrame:
    return pd.read_csv(workspace / "data" / "iris.csv").sample(30, random_state=5).reset_index(drop=True)


def v2_inputs(frame: pd.DataFrame, nested: bool = False) -> list[dict]:
    return [{"name": c, "shape": [len(frame), 1] if nested else [len(frame)], "datatype": "FP64",
             "data": [[v] for v in frame[c]] if nested else frame[c].tolist()} for c in FEATURES]


def test_every_body_format_gives_the_predictions_of_the_row_list(server, flowers):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        rows = client.post("/predict/batch", json={"samples": flowers[FEATURES].to_dict(orient="records")}).json()
        columns = client.post("/predict/batch", json={"columns": flowers[FEATURES].to_dict(orient="list")}).json()
        split = client.post("/predict/batch", json={"dataframe_split": {
            "columns": FEATURES[::-1], "data": flowers[FEATURES[::-1]].values.tolist(), "index": list(range(30))}}).json()
        v2 = client.post(INFER, json={"id": "req-7", "inputs": v2_inputs(flowers)}).json()
        nested = client.post(INFER, json={"inputs": v2_inputs(flowers, nested=True)[::-1]}).json()
    expected = [p["prediction"] for p in rows["predictions"]]
    assert rows["sample_count"] == columns["sample_count"] == split["sample_count"] == 30
    assert split["predictions"] == rows["predictions"]  # MLflow's orient is answered as rows, as MLflow does
    assert list(columns["columns"]) == ["prediction", *(f"probability_{label}" for label in LABELS)]
    assert columns["columns"]["prediction"] == expected
    for label in LABELS:
        assert columns["columns"][f"probability_{label}"] == [p["probabilities"][label] for p in rows["predictions"]]
    assert v2["model_name"] == "iris" and v2["id"] == "req-7" and v2["model_version"]
    outputs = {o["name"]: o for o in v2["outputs"]}
    assert list(outputs) == list(columns["columns"])
    assert outputs["prediction"] == {"name": "prediction", "shape": [30, 1], "datatype": "BYTES", "data": expected}
    assert outputs["probability_setosa"]["datatype"] == "FP64"
    assert outputs["probability_setosa"]["data"] == columns["columns"]["probability_setosa"]
    assert nested["outputs"] == v2["outputs"] and len(nested["id"]) == 32  # no id sent: the request's X-Request-ID


def test_entity_columns_sent_beside_the_features_come_back_in_every_format(server, flowers):
    head = flowers.head(3).assign(id=[7, 8, 9])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        columns = client.post("/predict/batch", json={"columns": {**head[FEATURES].to_dict(orient="list"),
                                                                  "id": ["a", "b", "c"], "note": 1}}).json()
        split = client.post("/predict/batch", json={"dataframe_split": {
            "columns": ["id", *FEATURES], "data": head[["id", *FEATURES]].values.tolist()}}).json()
        v2 = client.post(INFER, json={"inputs": [*v2_inputs(head), {"name": "id", "shape": [3], "datatype": "INT64",
                                                                      "data": [7, 8, 9]}]}).json()
    assert list(columns["columns"])[:2] == ["id", "prediction"] and columns["columns"]["id"] == ["a", "b", "c"]
    assert [p["id"] for p in split["predictions"]] == [7, 8, 9] and list(split["predictions"][0])[:2] == ["id", "prediction"]
    assert v2["outputs"][0] == {"name": "id", "shape": [3, 1], "datatype": "INT64", "data": [7, 8, 9]}


def test_missing_values_are_null_in_every_format(server, flowers):
    row = flowers[FEATURES].iloc[0].to_dict()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        one = client.post("/predict/batch", json={"samples": [{**row, "petal_width_cm": None}]}).json()
        columns = client.post("/predict/batch", json={"columns": {**{c: [v] for c, v in row.items()},
                                                                  "petal_width_cm": [None]}}).json()
        v2 = client.post(INFER, json={"inputs": [{"name": c, "shape": [1], "datatype": "FP64",
                                                  "data": [None if c == "petal_width_cm" else v]}
                                                 for c, v in row.items()]}).json()
    assert columns["columns"]["prediction"] == [one["predictions"][0]["prediction"]] == v2["outputs"][0]["data"]


ROW = {"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}
COLUMNS = {c: [v, v, v] for c, v in ROW.items()}
SPLIT = {"columns": FEATURES, "data": [list(ROW.values())] * 3}


def tensor(name: str, data: list, datatype: str = "FP64", shape: list | None = None) -> dict:
    return {"name": name, "shape": shape if shape is not None else [len(data)], "datatype": datatype, "data": data}


INPUTS = [tensor(c, [v, v]) for c, v in ROW.items()]

BAD = [
    ("/predict/batch", {"columns": [ROW]}, 422, "invalid_input", "columns"),
    ("/predict/batch", {"columns": {k: v for k, v in COLUMNS.items() if k != "petal_width_cm"}}, 422, "invalid_input",
     "columns.petal_width_cm"),
    ("/predict/batch", {"columns": {**COLUMNS, "petal_width_cm": 0.2}}, 422, "invalid_input", "columns.petal_width_cm"),
    ("/predict/batch", {"columns": {**COLUMNS, "sepal_width_cm": [1.0, 2.0]}}, 422, "invalid_input",
     "columns.sepal_width_cm"),
    ("/predict/batch", {"columns": {**COLUMNS, "sepal_width_cm": [1.0, "wide", 2.0]}}, 422, "invalid_input",
     "columns.sepal_width_cm[1]"),
    ("/predict/batch", {"columns": {**COLUMNS, "sepal_width_cm": [1.0, 2.0, True]}}, 422, "invalid_input",
     "columns.sepal_width_cm[2]"),
    ("/predict/batch", {"columns": {**COLUMNS, "sepal_width_cm": [1e39, 2.0, 3.0]}}, 422, "invalid_input",
     "columns.sepal_width_cm[0]"),
    ("/predict/batch", {"columns": {c: [] for c in ROW}}, 422, "invalid_input", "columns"),
    ("/predict/batch", {"columns": {c: [v] * 51 for c, v in ROW.items()}}, 413, "batch_too_large", "columns"),
    ("/predict/batch", {"samples": [ROW], "columns": COLUMNS}, 422, "invalid_input", "columns"),
    ("/predict/batch", {"dataframe_split": {"columns": FEATURES}}, 422, "invalid_input", "dataframe_split.data"),
    ("/predict/batch", {"dataframe_split": [ROW]}, 422, "invalid_input", "dataframe_split"),
    ("/predict/batch", {"dataframe_split": {**SPLIT, "columns": FEATURES[:3]}}, 422, "invalid_input",
     "dataframe_split.columns"),
    ("/predict/batch", {"dataframe_split": {**SPLIT, "columns": [*FEATURES, 4]}}, 422, "invalid_input",
     "dataframe_split.columns[4]"),
    ("/predict/batch", {"dataframe_split": {**SPLIT, "data": [[5.1, 3.5, 1.4, 0.2], [5.1, 3.5]]}}, 422,
     "invalid_input", "dataframe_split.data[1]"),
    ("/predict/batch", {"dataframe_split": {**SPLIT, "data": [[5.1, 3.5, 1.4, None], [5.1, 3.5, "x", 0.2]]}}, 422,
     "invalid_input", "dataframe_split.data[1][2]"),
    ("/predict/batch", {"dataframe_split": {**SPLIT, "data": [list(ROW.values())] * 51}}, 413, "batch_too_large",
     "dataframe_split.data"),
    (INFER, {"inputs": []}, 422, "invalid_input", "inputs"),
    (INFER, {"inputs": INPUTS[:3]}, 422, "invalid_input", "inputs"),
    (INFER, {"inputs": [*INPUTS[:3], tensor("petal_width_cm", ["a", "b"], "BYTES")]}, 422, "invalid_input",
     "inputs[3].datatype"),
    (INFER, {"inputs": [*INPUTS[:3], tensor("petal_width_cm", [1.0, 2.0], shape=[3])]}, 422, "invalid_input",
     "inputs[3].shape"),
    (INFER, {"inputs": [*INPUTS[:3], tensor("petal_width_cm", [1.0])]}, 422, "invalid_input", "inputs[3].data"),
    (INFER, {"inputs": [*INPUTS[:3], tensor("petal_width_cm", [1.0, "x"])]}, 422, "invalid_input",
     "inputs[3].data[1]"),
    (INFER, {"inputs": [*INPUTS, INPUTS[0]]}, 422, "invalid_input", "inputs[4].name"),
    (INFER, {"inputs": [tensor(c, [v] * 51) for c, v in ROW.items()]}, 413, "batch_too_large", "inputs"),
    ("/v2/models/not-iris/infer", {"inputs": INPUTS}, 404, "model_not_found", None),
]


@pytest.mark.parametrize("path, body, status, kind, field", BAD, ids=[f"{i}-{b[0][:12]}" for i, b in enumerate(BAD)])
def test_a_body_that_does_not_fit_gets_a_4xx_naming_the_field(server, path, body, status, kind, field):
    response = httpx.post(f"{server.url}{path}", content=json.dumps(body), timeout=30,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == kind and answer["message"]
    if field:
        assert field in [f["field"] for f in answer["fields"]], answer


def test_a_misnamed_column_is_pointed_out(server):
    columns = {**{k: v for k, v in COLUMNS.items() if k != "petal_width_cm"}, "petal_widht_cm": [0.2] * 3}
    answer = httpx.post(f"{server.url}/predict/batch", json={"columns": columns}, timeout=30).json()
    assert answer["fields"] == [{"field": "columns.petal_width_cm", "message": "missing column 'petal_width_cm' (send "
                                 "every feature column, with null for missing values); is 'petal_widht_cm' meant to "
                                 "be this column?"}]


def test_the_documents_describe_every_body_and_the_v2_route(server):
    for document in ("/openapi.json", "/docs.json"):
        spec = httpx.get(f"{server.url}{document}", timeout=30).json()
        batch = spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert [s["title"] for s in batch["oneOf"]] == ["samples", "columns", "dataframe_split"], document
        infer = spec["paths"]["/v2/models/{model_name}/infer"]["post"]
        assert infer["parameters"][0]["schema"]["enum"] == ["iris"] and {"404", "422"} <= set(infer["responses"])
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert 'route="/v2/models/{model_name}/infer"' in metrics
