"""`mmp serve-api`: a real BentoML server process answered over real HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

from tests.conftest import Server

ROW = {"sepal_length_cm": 5.1, "sepal_width_cm": 3.5, "petal_length_cm": 1.4, "petal_width_cm": 0.2}
FEATURES = list(ROW)


def test_every_route_answers(server, trained):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready").json()
        assert ready == {"status": "ready", "model_uri": f"runs:/{trained['iris']}/model", "model_name": "iris"}
        info = client.get("/model/info").json()
        assert info["run_id"] == trained["iris"] and info["recipe"] == "iris"
        assert info["params"]["model.params.n_estimators"] == "100" and "test_accuracy" in info["metrics"]
        schema = client.get("/model/schema").json()
        assert [i["name"] for i in schema["inputs"]] == FEATURES and schema["classes"] == ["setosa", "versicolor", "virginica"]
        assert client.post("/predict", json=ROW).status_code == 200
        assert client.post("/predict/batch", json={"samples": [ROW, ROW]}).json()["sample_count"] == 2
        metrics = client.get("/metrics").text
        assert 'mmp_http_requests_total{method="POST",route="/predict",status="200"}' in metrics
        assert "mmp_http_request_duration_seconds_bucket" in metrics
        for builtin in ("/livez", "/readyz"):
            assert client.get(builtin).status_code == 200
        assert client.get("/docs").status_code == 200
        assert "Row" in client.get("/openapi.json").json()["components"]["schemas"]


def test_predictions_equal_the_mlflow_pyfunc(server, workspace, trained):
    import mlflow

    from mmp.io.tracking import mlflow_uri

    frame = pd.read_csv(workspace / "data" / "iris.csv").sample(25, random_state=1)
    samples = frame[FEATURES].to_dict(orient="records")
    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    expected = mlflow.pyfunc.load_model(f"runs:/{trained['iris']}/model").predict(frame)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        single = [client.post("/predict", json=s).json() for s in samples]
        batch = client.post("/predict/batch", json={"samples": samples}).json()["predictions"]
    for i, (one, many) in enumerate(zip(single, batch)):
        assert one["prediction"] == many["prediction"] == expected["prediction"].iloc[i]
        for label in ("setosa", "versicolor", "virginica"):
            assert one["probabilities"][label] == many["probabilities"][label] == expected[f"probability_{label}"].iloc[i]


def test_missing_values_and_extra_fields_are_fine(server):
    body = {**ROW, "petal_width_cm": None, "id": 17, "note": "ignored"}
    response = httpx.post(f"{server.url}/predict", json=body, timeout=30)
    assert response.status_code == 200 and response.json()["prediction"] in ("setosa", "versicolor", "virginica")
    bracketed = {**ROW, "note": "[{" * 100 + '\\"' + "[" * 100, "tags": [["a"], ["b"]]}  # text brackets do not nest
    response = httpx.post(f"{server.url}/predict/batch", json={"samples": [bracketed] * 3}, timeout=30)
    assert response.status_code == 200 and response.json()["sample_count"] == 3


def test_every_response_carries_a_request_id(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
        for method, path in (("GET", "/health"), ("GET", "/livez"), ("GET", "/nowhere"), ("POST", "/predict")):
            response = client.request(method, path, content=b"nope")
            assert len(response.headers["x-request-id"]) == 32


def raw(body: str) -> bytes:
    return body.encode()


HUGE_INT = 10 ** 400  # a JSON integer of 401 digits: no float holds it


BAD = [
    ("/predict", b"nope", 400, "invalid_json", None),
    ("/predict", b"", 400, "empty_body", None),
    ("/predict", b"{\"sepal_length_cm\": 5.1,", 400, "invalid_json", None),
    ("/predict", json.dumps([ROW]).encode(), 422, "invalid_input", "body"),
    ("/predict", b"\"a string\"", 422, "invalid_input", "body"),
    ("/predict", b"{}", 422, "invalid_input", "sepal_length_cm"),
    ("/predict", json.dumps({k: v for k, v in ROW.items() if k != "petal_width_cm"}).encode(), 422, "invalid_input", "petal_width_cm"),
    ("/predict", json.dumps({**ROW, "sepal_width_cm": "wide"}).encode(), 422, "invalid_input", "sepal_width_cm"),
    ("/predict", json.dumps({**ROW, "sepal_width_cm": True}).encode(), 422, "invalid_input", "sepal_width_cm"),
    ("/predict", json.dumps({**ROW, "sepal_width_cm": {"v": 1}}).encode(), 422, "invalid_input", "sepal_width_cm"),
    ("/predict", json.dumps({**ROW, "sepal_width_cm": [1, 2]}).encode(), 422, "invalid_input", "sepal_width_cm"),
    ("/predict", raw('{"sepal_length_cm": NaN, "sepal_width_cm": 1, "petal_length_cm": 1, "petal_width_cm": 1}'), 422, "invalid_input", "sepal_length_cm"),
    ("/predict", raw('{"sepal_length_cm": Infinity, "sepal_width_cm": 1, "petal_length_cm": 1, "petal_width_cm": 1}'), 422, "invalid_input", "sepal_length_cm"),
    ("/predict", raw('{"sepal_length_cm": -Infinity, "sepal_width_cm": 1, "petal_length_cm": 1, "petal_width_cm": 1}'), 422, "invalid_input", "sepal_length_cm"),
    ("/predict", json.dumps({**ROW, "petal_length_cm": 1e300}).encode(), 422, "invalid_input", "petal_length_cm"),
    ("/predict", json.dumps({**ROW, "petal_length_cm": HUGE_INT}).encode(), 422, "invalid_input", "petal_length_cm"),
    ("/predict", json.dumps({**ROW, "petal_length_cm": -HUGE_INT}).encode(), 422, "invalid_input", "petal_length_cm"),
    ("/predict", json.dumps({**ROW, "sepal_width_cm": 10 ** 2000}).encode(), 400, "number_too_long", None),
    ("/predict", b"[" * 15000, 400, "too_deep", None),
    ("/predict", b'{"a":' * 3000 + b"1" + b"}" * 3000, 400, "too_deep", None),
    ("/predict", json.dumps({**ROW, "note": "x" * 30000}).encode(), 413, "body_too_large", None),
    ("/predict/batch", b"{}", 422, "invalid_input", "samples"),
    ("/predict/batch", json.dumps({"samples": ROW}).encode(), 422, "invalid_input", "samples"),
    ("/predict/batch", json.dumps({"samples": []}).encode(), 422, "invalid_input", "samples"),
    ("/predict/batch", json.dumps({"samples": [ROW] * 51}).encode(), 413, "batch_too_large", "samples"),
    ("/predict/batch", json.dumps({"samples": [ROW, ROW, ROW, {**ROW, "petal_length_cm": "long"}]}).encode(), 422, "invalid_input", "samples[3].petal_length_cm"),
    ("/predict/batch", json.dumps({"samples": [42]}).encode(), 422, "invalid_input", "samples[0]"),
    ("/predict/batch", b"[1, 2", 400, "invalid_json", None),
    ("/predict/batch", json.dumps([ROW]).encode(), 422, "invalid_input", "samples"),
    ("/predict/batch", json.dumps({"samples": [ROW, {**ROW, "sepal_length_cm": HUGE_INT}]}).encode(), 422, "invalid_input", "samples[1].sepal_length_cm"),
    ("/predict/batch", b'{"samples": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "too_deep", None),
]


@pytest.mark.parametrize("path, body, status, kind, field", BAD, ids=[f"{i}-{b[1][:30]!r}" for i, b in enumerate(BAD)])
def test_malformed_requests_get_a_4xx_naming_the_field(server, path, body, status, kind, field):
    response = httpx.post(f"{server.url}{path}", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == kind
    if field:
        assert field in [f["field"] for f in answer["fields"]], answer


def test_wrong_method_unknown_route_and_form_bodies_are_4xx(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/predict").status_code == 405
        assert client.get("/no/such/route").status_code == 404
        assert client.post("/predict", data={"sepal_length_cm": "5"}).status_code == 400
        assert client.get("/health").status_code == 200  # still alive after all of it


def local_port(response: httpx.Response) -> int:
    """The client-side port of the connection a response came on: the same port, the same connection."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def test_the_connection_stays_usable_after_every_error_response(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path, body, status, _, _ in BAD + [("/no/such/route", b"{}", 404, None, None)]:
            bad = client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert bad.status_code == status and "close" not in bad.headers.get("connection", ""), (path, body[:40])
            good = client.post("/predict", json=ROW)  # a reset connection raises here
            assert good.status_code == 200, (path, body[:40])
            assert local_port(good) == local_port(bad), (path, body[:40])


def test_every_schema_the_documents_reference_is_defined(server):
    for document in ("/openapi.json", "/docs.json"):  # the app's own, and BentoML's for the whole service
        spec = httpx.get(f"{server.url}{document}", timeout=30).json()
        for ref in references(spec):
            assert ref.startswith("#/"), (document, ref)
            node = spec
            for part in ref[2:].split("/"):
                assert isinstance(node, dict) and part in node, f"{document}: {ref} is not defined"
                node = node[part]


def test_the_error_responses_of_the_predict_routes_are_documented(server):
    for document in ("/openapi.json", "/docs.json"):
        spec = httpx.get(f"{server.url}{document}", timeout=30).json()
        for path in ("/predict", "/predict/batch"):
            responses = spec["paths"][path]["post"]["responses"]
            for status in ("400", "413", "422"):
                assert status in responses, (document, path, status)
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (document, path, status)
        error = spec["components"]["schemas"]["ErrorBody"]
        assert set(error["properties"]) == {"error", "message", "fields"} and set(error["required"]) == {"error", "message"}
        field = spec["components"]["schemas"]["FieldErrorBody"]
        assert set(field["properties"]) == {"field", "message"}


def references(node) -> list[str]:
    """Every `$ref` in an OpenAPI document."""
    if isinstance(node, dict):
        return [r for k, v in node.items() for r in ([v] if k == "$ref" else references(v))]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


def test_schemathesis_finds_no_server_error(server, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "40", "--generation-deterministic"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "No issues found" in proc.stdout


def test_schemathesis_finds_no_undocumented_status_and_no_body_off_its_schema(server, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
         "--checks", "status_code_conformance,response_schema_conformance", "--max-examples", "40",
         "--generation-deterministic"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "No issues found" in proc.stdout


def test_bounded_load_has_zero_errors(server):
    async def hammer(total: int = 5000, concurrency: int = 16) -> list[int]:
        statuses: list[int] = []
        counter = iter(range(total))
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
            async def worker() -> None:
                for _ in counter:
                    statuses.append((await client.post("/predict", json=ROW)).status_code)
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=300)
        return statuses

    statuses = asyncio.run(hammer())
    assert len(statuses) == 5000 and set(statuses) == {200}


def test_ready_is_503_while_loading_then_200_and_auth_guards_the_model(workspace, trained):
    srv = Server(workspace, trained["model"], "env=prod", "serving.host=127.0.0.1", "serving.workers=1",
                 env={"MMP_API_TOKEN": "s3cret-token"})
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and 200 not in seen:
            try:
                seen.append(httpx.get(f"{srv.url}/ready", timeout=5).status_code)
            except httpx.TransportError:
                assert srv.proc.poll() is None, srv.log.read_text()
            time.sleep(0.02)
        assert 503 in seen and seen[-1] == 200, seen
        assert seen.index(200) > seen.index(503)
        assert httpx.get(f"{srv.url}/health", timeout=5).status_code == 200
        row = pd.read_csv(workspace / "data" / "breast_cancer.csv").drop(columns=["id", "diagnosis"]).iloc[0].to_dict()
        assert httpx.post(f"{srv.url}/predict", json=row, timeout=30).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{srv.url}/predict", json=row, headers=wrong, timeout=30).status_code == 401
        good = {"Authorization": "Bearer s3cret-token"}
        answer = httpx.post(f"{srv.url}/predict", json=row, headers=good, timeout=30).json()
        assert answer["prediction"] in ("benign", "malignant") and 0 <= answer["probability"] <= 1
        assert httpx.get(f"{srv.url}/model/info", timeout=5).status_code == 401
        environ = open(f"/proc/{srv.proc.pid}/environ", "rb").read().split(b"\0")
        assert b"BENTOML_DO_NOT_TRACK=true" in environ  # no phoning home
    finally:
        srv.stop()
    log = srv.log.read_text()
    for stage in ("[1/3] model", "[2/3] BentoML model store", "[3/3] starting BentoML service", "/docs", "/health"):
        assert stage in log


def test_sigterm_lets_in_flight_requests_finish(workspace, trained):
    srv = Server(workspace, trained["iris"])
    srv.wait_ready()

    async def in_flight() -> list[int]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=120) as client:
            tasks = [asyncio.create_task(client.post("/predict/batch", json={"samples": [ROW] * 5000}))
                     for _ in range(10)]
            await asyncio.sleep(0.3)
            assert not all(t.done() for t in tasks)
            srv.proc.send_signal(signal.SIGTERM)
            return [r.status_code for r in await asyncio.gather(*tasks)]

    assert asyncio.run(in_flight()) == [200] * 10
    assert srv.proc.wait(timeout=60) == 0


def test_sigterm_answers_every_request_already_sent_refuses_new_connections_and_exits_0(workspace, trained):
    """20 batches of 10,000 rows arrive while the worker is stalled (suspended, as a busy event loop or
    a starved CPU stalls it) and SIGTERM comes before it runs again: uvicorn alone closed the server
    with those connections still queued or just accepted, and reset every one of them."""
    import psutil

    srv = Server(workspace, trained["iris"], "serving.max_batch_rows=20000", "serving.max_body_bytes=50000000")
    body = json.dumps({"samples": [ROW] * 10000}).encode()
    connected: set[int] = set()

    async def post(client: httpx.AsyncClient, i: int) -> httpx.Response:
        async def trace(event: str, info: dict) -> None:
            if event == "connection.connect_tcp.complete":
                connected.add(i)

        return await client.post("/predict/batch", content=body, headers={"Content-Type": "application/json"},
                                 extensions={"trace": trace})

    async def refused_while_running() -> str:
        """Open new connections until one is refused: "" if that happens while the server still runs
        and every connection before it was answered or reset while it ran, else what went wrong. (A
        connection that lands in the instant between the last accept and the socket's shutdown is
        reset then: the server still runs, and the next one is refused.)"""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                async with httpx.AsyncClient(base_url=srv.url, timeout=10) as late:
                    if (status := (await late.get("/health")).status_code) != 200:
                        return f"/health answered {status}"
            except httpx.ConnectError:
                return "" if srv.proc.poll() is None else "refused only once the server had exited"
            except httpx.TransportError as exc:
                if srv.proc.poll() is not None:  # queued, then reset when the server exited
                    return f"a new connection was queued and reset when the server exited ({exc!r})"
            await asyncio.sleep(0.05)
        return "no new connection was refused within 20 s"

    async def in_flight(workers: list) -> tuple[list, bool, httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=120, limits=httpx.Limits(max_connections=20)) as client, \
                httpx.AsyncClient(base_url=srv.url, timeout=30) as probe:
            assert (await probe.get("/ready")).status_code == 200  # a keep-alive connection from before
            try:
                for worker in workers:
                    worker.suspend()
                tasks = [asyncio.create_task(post(client, i)) for i in range(20)]
                while len(connected) < 20:
                    await asyncio.sleep(0.01)
                srv.proc.send_signal(signal.SIGTERM)
                ready = asyncio.create_task(probe.get("/ready"))
                await asyncio.sleep(0.5)  # the arbiter passes SIGTERM on to the (suspended) worker
            finally:
                for worker in workers:
                    worker.resume()
            refused = asyncio.create_task(refused_while_running())
            return await asyncio.gather(*tasks, return_exceptions=True), await refused, await ready

    try:
        srv.wait_ready()
        responses, refused, ready = asyncio.run(in_flight(psutil.Process(srv.proc.pid).children()))
        assert [getattr(r, "status_code", r) for r in responses] == [200] * 20
        assert all(len(r.json()["predictions"]) == 10000 for r in responses)
        assert refused == "", f"a new connection was not refused while the server drained: {refused}"
        assert ready.status_code == 503 and ready.json()["error"] == "shutting_down"
        assert ready.headers["connection"] == "close"
        assert srv.proc.wait(timeout=60) == 0
    finally:
        srv.stop()


def test_the_bearer_scheme_may_be_written_in_any_case_but_the_token_must_match(workspace, trained):
    srv = Server(workspace, trained["iris"], "serving.auth.token_env=MMP_TEST_TOKEN", env={"MMP_TEST_TOKEN": "t0ken"})
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for header in ("Bearer t0ken", "bearer t0ken", "BEARER t0ken", "bEaReR   t0ken"):
                assert client.post("/predict", json=ROW, headers={"Authorization": header}).status_code == 200, header
            for header in ("bearer t0ken2", "bearer T0KEN", "Basic t0ken", "t0ken", "bearert0ken", "bearer", ""):
                response = client.post("/predict", json=ROW, headers={"Authorization": header})
                assert response.status_code == 401 and response.json()["error"] == "unauthorized", header
    finally:
        srv.stop()


BROKEN_MODEL = """
import mlflow


class Broken(mlflow.pyfunc.PythonModel):
    \"\"\"Predicts "fine" except for the text "boom", where it has a bug.\"\"\"

    def predict(self, context, model_input, params=None):
        if (model_input["text"] == "boom").any():
            raise RuntimeError("a bug in the model")
        return ["fine"] * len(model_input)


mlflow.models.set_model(Broken())
"""


def test_a_bug_gets_a_json_500_and_the_connection_stays_usable(workspace, tmp_path):
    import mlflow
    from mlflow.models import infer_signature

    from mmp.io.tracking import mlflow_uri

    (tmp_path / "broken.py").write_text(BROKEN_MODEL)
    mlflow.set_tracking_uri(mlflow_uri(str(workspace / "mlruns")))
    example = pd.DataFrame({"text": ["a", "b"]})
    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(name="model", python_model=str(tmp_path / "broken.py"), pip_requirements=[],
                                signature=infer_signature(example, ["fine", "fine"]), input_example=example)
    srv = Server(workspace, run.info.run_id)
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for path, bad, good in (("/predict", {"text": "boom"}, {"text": "ok"}),
                                    ("/predict/batch", {"samples": [{"text": "ok"}, {"text": "boom"}]},
                                     {"samples": [{"text": "ok"}]})):
                failed = client.post(path, json=bad)
                assert failed.status_code == 500 and failed.json()["error"] == "internal_error"
                assert failed.headers["x-request-id"] in failed.json()["message"]
                answered = client.post(path, json=good)  # a reset connection raises here
                assert answered.status_code == 200 and local_port(answered) == local_port(failed)
    finally:
        srv.stop()
    assert "RuntimeError: a bug in the model" in srv.log.read_text()


def test_unknown_run_id_exits_2(workspace):
    from tests.conftest import clean_env, run_mmp
    from mmp.io.tracking import mlflow_uri

    result = run_mmp("serve-api", "--run-id", "0" * 32, cwd=workspace,
                     env=clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns"))))
    assert result.code == 2 and "no such model" in result.err and "Traceback" not in result.err


def test_build_makes_a_bento_that_serves(workspace, trained, tmp_path):
    from tests.conftest import clean_env, free_port, run_mmp, wait_for_http
    from mmp.io.tracking import mlflow_uri

    env = clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")), BENTOML_HOME=str(workspace / "bentoml"))
    result = run_mmp("build", "--run-id", trained["iris"], cwd=workspace, env=env)
    assert result.code == 0, result.err
    bento = result.out.strip().splitlines()[-1]
    assert bento.startswith("mmp-iris:") and "bentoml containerize" in result.err
    port = free_port()
    tag = f"mmp-iris:{trained['iris']}"
    proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", bento, "--port", str(port)], cwd=tmp_path,
                            env={**env, "MMP_MODEL_TAG": tag, "BENTOML_DO_NOT_TRACK": "true"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ready", timeout=120, proc=proc)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json=ROW, timeout=30).json()
        assert answer["prediction"] == "setosa"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_batch_and_single_predictions_carry_the_entity_columns_sent(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        batch = client.post("/predict/batch", json={"samples": [{**ROW, "id": 7}, {**ROW, "id": "b-8"}, ROW]}).json()
        single = client.post("/predict", json={**ROW, "id": 9}).json()
    assert [p.get("id") for p in batch["predictions"]] == [7, "b-8", None]
    assert list(batch["predictions"][0])[:2] == ["id", "prediction"]
    assert single["id"] == 9 and single["prediction"] == "setosa"


def test_env_problems_are_reported_before_any_slow_step(workspace, trained):
    """A missing auth token or a taken port stops serve-api before the MLflow lookup and the import."""
    import socket

    from tests.conftest import clean_env, free_port, run_mmp
    from mmp.io.tracking import mlflow_uri

    env = clean_env(MLFLOW_TRACKING_URI=mlflow_uri(str(workspace / "mlruns")), BENTOML_HOME=str(workspace / "bentoml"))
    env.pop("MMP_API_TOKEN", None)
    started = time.monotonic()
    no_token = run_mmp("serve-api", "--run-id", trained["iris"], "env=prod", f"serving.port={free_port()}",
                       cwd=workspace, env=env)
    assert no_token.code == 2 and "MMP_API_TOKEN is not set" in no_token.err
    assert "[1/3]" not in no_token.err and "listening" not in no_token.err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_mmp("serve-api", "--run-id", trained["iris"], "--port", str(port), cwd=workspace, env=env)
    assert busy.code == 2 and f"127.0.0.1:{port} is already in use" in busy.err and "[1/3]" not in busy.err
    assert time.monotonic() - started < 60


def test_startup_lines_say_where_the_service_listens(server):
    text = server.log.read_text()
    assert f"listening on 127.0.0.1:{server.port} (this machine only)" in text
