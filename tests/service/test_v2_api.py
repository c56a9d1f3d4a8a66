"""The v2 (Open Inference Protocol) endpoints through the real app, lifespan included.

A tiny Flatten+Gemm model (``tests/model_factory.py``) is served in two versions; expected logits
come from its numpy twin and expected scores and thresholds from :mod:`service.scores` and the
manifest, so the checks do not trust the code under test. Where ``tritonclient[http]`` is
installed its request builder and ``InferResult`` are the client.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.manifest import MANIFEST_FILENAME, read_manifest
from service.scores import ScoreName, accepts, compute_scores, softmax, threshold_from_quantiles
from service.settings import Settings
from service.v2.codec import BINARY_MEDIA_TYPE, HEADER_LENGTH_HEADER
from service.v2.schemas import OUTPUTS
from tests.model_factory import TinyModel, build_model_dir, random_inputs, tiny_model_for

SHAPE = (1, 28, 28)
MAX_ITEMS = 16


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    build_model_dir(root, name="tiny", version="1", seed=0)
    build_model_dir(root, name="tiny", version="2", seed=5)
    return root


@pytest.fixture(scope="module")
def client(model_root: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_dir=model_root,
        default_model="tiny",
        providers=["CPUExecutionProvider"],
        max_batch_size=8,
        max_delay_ms=1.0,
        max_queue_items=256,
        max_items_per_request=MAX_ITEMS,
        max_body_bytes=2 * 1024 * 1024,
        intra_op_threads=1,
        enable_metrics=True,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def reference(model_root: Path, version: str) -> tuple[TinyModel, Any]:
    directory = model_root / "tiny" / version
    return tiny_model_for(directory), read_manifest(directory / MANIFEST_FILENAME)


def json_infer(x: np.ndarray, **extra: Any) -> dict[str, Any]:
    inputs = [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}]
    return {"inputs": inputs, **extra}


def binary_infer(x: np.ndarray, **extra: Any) -> tuple[bytes, dict[str, str]]:
    raw = x.astype("<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            **extra,
        }
    ).encode()
    return header + raw, {HEADER_LENGTH_HEADER: str(len(header))}


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {output["name"]: output for output in doc["outputs"]}


# --- health and metadata --------------------------------------------------------------------------


def test_server_metadata_and_health(client: TestClient) -> None:
    response = client.get("/v2")
    assert response.status_code == 200
    assert response.json() == {
        "name": "ood-scoring-service",
        "version": client.app.version,  # type: ignore[attr-defined]
        "extensions": ["binary_tensor_data"],
    }
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/tiny/ready"):
        response = client.get(path)
        assert response.status_code == 200 and response.content == b"", path
    assert client.get("/v2/models/tiny/versions/1/ready").status_code == 200


def test_model_metadata(client: TestClient) -> None:
    latest = client.get("/v2/models/tiny").json()
    assert latest["name"] == "tiny" and latest["versions"] == ["1", "2"]
    assert latest["platform"] == "onnxruntime_onnx"
    assert latest["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, *SHAPE]}]
    outputs = by_name(latest)
    assert list(outputs) == list(OUTPUTS)
    assert outputs["logits"]["shape"] == [-1, 10] and outputs["label"]["datatype"] == "BYTES"
    assert client.get("/v2/models/tiny/versions/1").json()["inputs"] == latest["inputs"]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nope",
        "/v2/models/tiny/versions/9",
        "/v2/models/nope/ready",
        "/v2/models/tiny/versions/9/ready",
        "/v2/models/Bad%20Name",
        "/v2/models/tiny/versions/01",
    ],
)
def test_unknown_model_or_version_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert set(response.json()) == {"error"} and isinstance(response.json()["error"], str)


# --- infer ----------------------------------------------------------------------------------------


def test_json_infer_matches_reference(client: TestClient, model_root: Path) -> None:
    x = random_inputs(5, SHAPE, seed=11)
    response = client.post("/v2/models/tiny/infer", json=json_infer(x, id="abc"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert HEADER_LENGTH_HEADER.lower() not in response.headers
    doc = response.json()
    assert doc["model_name"] == "tiny" and doc["model_version"] == "2" and doc["id"] == "abc"
    model, manifest = reference(model_root, "2")
    expected_logits = model.logits(x)
    outputs = by_name(doc)
    assert list(outputs) == list(OUTPUTS)
    logits = np.array(outputs["logits"]["data"], dtype=np.float32).reshape(
        outputs["logits"]["shape"]
    )
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)
    scores = compute_scores(logits, manifest.calibration.energy_temperature)
    for score in ScoreName:
        sent = np.array(outputs[score.value]["data"], dtype=np.float32)
        np.testing.assert_array_equal(sent, scores[score].astype(np.float32))
    np.testing.assert_allclose(
        outputs["probabilities"]["data"], softmax(logits).ravel(), rtol=1e-6, atol=1e-7
    )
    assert outputs["class_index"]["data"] == logits.argmax(axis=1).tolist()
    assert outputs["label"]["data"] == [manifest.classes[i] for i in logits.argmax(axis=1)]
    default = manifest.calibration.default_score
    rule = manifest.calibration.scores[default]
    expected_ood = ~accepts(scores[default], rule.threshold, default)
    assert outputs["is_ood"]["data"] == expected_ood.tolist()
    assert doc["parameters"] == {
        "score": default.value,
        "score_direction": rule.direction.value,
        "threshold": rule.threshold,
        "threshold_source": "manifest",
        "target_tpr": rule.target_tpr,
    }


def test_binary_infer_with_selected_mixed_outputs(client: TestClient, model_root: Path) -> None:
    x = random_inputs(7, SHAPE, seed=12)
    body, headers = binary_infer(
        x,
        outputs=[
            {"name": "is_ood", "parameters": {"binary_data": True}},
            {"name": "label"},
            {"name": "logits", "parameters": {"binary_data": True}},
        ],
    )
    response = client.post("/v2/models/tiny/versions/1/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == BINARY_MEDIA_TYPE
    length = int(response.headers[HEADER_LENGTH_HEADER])
    doc = json.loads(response.content[:length])
    tail = response.content[length:]
    assert [o["name"] for o in doc["outputs"]] == ["is_ood", "label", "logits"]
    assert doc["model_version"] == "1"
    is_ood_size = doc["outputs"][0]["parameters"]["binary_data_size"]
    assert is_ood_size == 7 and "data" in doc["outputs"][1]
    logits = np.frombuffer(tail[is_ood_size:], dtype="<f4").reshape(7, 10)
    model, _ = reference(model_root, "1")
    np.testing.assert_allclose(logits, model.logits(x), rtol=1e-5, atol=1e-5)
    assert set(tail[:is_ood_size]) <= {0, 1}


def test_request_threshold_and_score_overrides(client: TestClient, model_root: Path) -> None:
    x = random_inputs(6, SHAPE, seed=13)
    _, manifest = reference(model_root, "2")
    params = {"score": "energy", "target_tpr": 0.8}
    doc = client.post("/v2/models/tiny/infer", json=json_infer(x, parameters=params)).json()
    quantiles = manifest.calibration.scores[ScoreName.ENERGY].quantiles
    expected = threshold_from_quantiles(quantiles, 0.8, ScoreName.ENERGY)
    assert doc["parameters"]["threshold"] == expected
    assert doc["parameters"]["score"] == "energy" and doc["parameters"]["target_tpr"] == 0.8
    assert doc["parameters"]["threshold_source"] == "request"
    outputs = by_name(doc)
    energy = np.array(outputs["energy"]["data"], dtype=np.float64)
    # is_ood is decided on the float64 score; float32 rounding of the echo cannot flip it here
    assert outputs["is_ood"]["data"] == (energy > expected).tolist()
    # an explicit threshold above every msp (all below 1 here) rejects everything
    params2 = {"score": "msp", "threshold": 1.0}
    doc = client.post("/v2/models/tiny/infer", json=json_infer(x, parameters=params2)).json()
    assert by_name(doc)["is_ood"]["data"] == [True] * 6
    assert doc["parameters"]["threshold"] == 1.0 and "target_tpr" not in doc["parameters"]


def test_v2_and_predict_agree(client: TestClient) -> None:
    x = random_inputs(4, SHAPE, seed=14)
    predict = client.post("/predict", json={"inputs": x.tolist(), "preprocessed": True})
    assert predict.status_code == 200, predict.text
    body, headers = binary_infer(x, parameters={"binary_data_output": False})
    doc = client.post("/v2/models/tiny/infer", content=body, headers=headers).json()
    outputs = by_name(doc)
    predictions = predict.json()["predictions"]
    assert outputs["label"]["data"] == [p["label"] for p in predictions]
    assert outputs["is_ood"]["data"] == [p["ood"] for p in predictions]
    np.testing.assert_allclose(
        outputs["msp"]["data"], [p["scores"]["msp"] for p in predictions], rtol=1e-6
    )
    assert doc["parameters"]["threshold"] == predict.json()["threshold"]


def test_gzip_request(client: TestClient) -> None:
    x = random_inputs(2, SHAPE, seed=15)
    body, headers = binary_infer(x, outputs=[{"name": "class_index"}])
    response = client.post(
        "/v2/models/tiny/infer",
        content=gzip.compress(body),
        headers={**headers, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert by_name(response.json())["class_index"]["datatype"] == "INT64"


def test_dynamic_batch_larger_than_one_batcher_run(client: TestClient, model_root: Path) -> None:
    x = random_inputs(MAX_ITEMS, SHAPE, seed=16)  # 16 items over max_batch_size=8: two runs
    body, headers = binary_infer(
        x, outputs=[{"name": "logits", "parameters": {"binary_data": True}}]
    )
    response = client.post("/v2/models/tiny/infer", content=body, headers=headers)
    length = int(response.headers[HEADER_LENGTH_HEADER])
    logits = np.frombuffer(response.content[length:], dtype="<f4").reshape(MAX_ITEMS, 10)
    model, _ = reference(model_root, "2")
    np.testing.assert_allclose(logits, model.logits(x), rtol=1e-5, atol=1e-5)


# --- errors over HTTP -------------------------------------------------------------------------


def infer_error(client: TestClient, content: bytes, headers: dict[str, str] | None = None) -> Any:
    response = client.post("/v2/models/tiny/infer", content=content, headers=headers or {})
    assert set(response.json()) == {"error"}, response.text
    return response


def test_bad_requests_are_400_with_error_string(client: TestClient) -> None:
    x = random_inputs(2, SHAPE)
    cases: list[tuple[bytes, dict[str, str]]] = [
        (json.dumps(json_infer(x)).replace('"FP32"', '"FP64"').encode(), {}),
        (json.dumps(json_infer(x.reshape(2, 28, 28, 1))).encode(), {}),
        (json.dumps(json_infer(x, outputs=[{"name": "nope"}])).encode(), {}),
        (json.dumps(json_infer(random_inputs(MAX_ITEMS + 1, SHAPE))).encode(), {}),
        (json.dumps(json_infer(x, parameters={"score": "odin"})).encode(), {}),
        (b"[" * 10_000, {}),
        (b"\xff\xfe", {}),
        (binary_infer(x)[0], {HEADER_LENGTH_HEADER: "999999999"}),
        (binary_infer(x)[0][:-3], binary_infer(x)[1]),
        (json.dumps(json_infer(x)).replace("]]]]", "]]]], 1e39]]").encode(), {}),
    ]
    for content, headers in cases:
        response = infer_error(client, content, headers)
        assert response.status_code == 400, (content[:80], response.text)


def test_unknown_model_infer_is_404(client: TestClient) -> None:
    body = json.dumps(json_infer(random_inputs(1, SHAPE))).encode()
    for path in ("/v2/models/nope/infer", "/v2/models/tiny/versions/3/infer"):
        response = client.post(path, content=body)
        assert response.status_code == 404 and set(response.json()) == {"error"}


def test_body_over_limit_is_refused(client: TestClient) -> None:
    # The app's body-limit middleware answers before any router, in the protocol's format; the
    # client re-raises server exceptions, so none may happen on the way.
    response = client.post("/v2/models/tiny/infer", content=b"0" * (3 * 1024 * 1024))
    assert response.status_code == 413
    assert isinstance(response.json()["error"], str)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/nothing", 404),
        ("GET", "/v2/models/tiny/foo", 404),
        ("GET", "/v2/repository/index", 404),
        ("POST", "/v2/models/tiny/ready", 405),
        ("GET", "/v2/models/tiny/infer", 405),
    ],
)
def test_framework_errors_on_v2_paths_have_the_protocol_shape(
    client: TestClient, method: str, path: str, status: int
) -> None:
    """Unknown routes and wrong methods under /v2 answer ``{"error": "<message>"}`` too."""
    response = client.request(method, path)
    assert response.status_code == status
    assert set(response.json()) == {"error"} and isinstance(response.json()["error"], str)


# --- tritonclient as the client -------------------------------------------------------------


def test_tritonclient_round_trip(client: TestClient, model_root: Path) -> None:
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.http._utils import _get_inference_request

    x = random_inputs(3, SHAPE, seed=17)
    tensor = http.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    body, json_size = _get_inference_request(
        inputs=[tensor],
        request_id="tc-1",
        outputs=None,  # no outputs: tritonclient asks for all of them as binary
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=None,
        custom_parameters={"score": "max_logit"},
    )
    response = client.post(
        "/v2/models/tiny/infer", content=body, headers={HEADER_LENGTH_HEADER: str(json_size)}
    )
    assert response.status_code == 200, response.text
    result = http.InferResult.from_response_body(
        response.content, header_length=int(response.headers[HEADER_LENGTH_HEADER])
    )
    model, manifest = reference(model_root, "2")
    np.testing.assert_allclose(result.as_numpy("logits"), model.logits(x), rtol=1e-5, atol=1e-5)
    labels = [b.decode() for b in result.as_numpy("label")]
    assert labels == [manifest.classes[i] for i in result.as_numpy("class_index")]
    assert result.as_numpy("is_ood").dtype == np.bool_
    assert result.get_response()["id"] == "tc-1"
    assert result.get_response()["parameters"]["score"] == "max_logit"


def test_forbidden_override_is_403_in_v2_format(model_root: Path) -> None:
    settings = Settings(
        model_dir=model_root,
        default_model="tiny",
        providers=["CPUExecutionProvider"],
        allow_threshold_override=False,
        allow_score_override=False,
    )
    x = random_inputs(1, SHAPE)
    with TestClient(create_app(settings)) as locked:
        for params in ({"threshold": 0.5}, {"target_tpr": 0.9}, {"score": "energy"}):
            body = json_infer(x, parameters=params)
            response = locked.post("/v2/models/tiny/infer", json=body)
            assert response.status_code == 403, params
            assert set(response.json()) == {"error"}
        assert locked.post("/v2/models/tiny/infer", json=json_infer(x)).status_code == 200


def test_openapi_documents_the_v2_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v2/models/{name}/versions/{version}/infer" in paths
    assert {"/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}"} <= set(paths)
