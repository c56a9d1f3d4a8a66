"""POST /predict through the app (lifespan included) on real ONNX Runtime sessions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.manifest import read_manifest
from service.scores import ScoreName, compute_scores, threshold_from_quantiles
from tests.model_factory import tiny_model_for
from tests.service.conftest import DEFAULT, items, png_b64


@pytest.fixture(scope="module")
def reference(model_root: Path):
    """Numpy twin of the default model's latest version, for expected logits."""
    return tiny_model_for(model_root / DEFAULT / "2")


def manifest_of(model_root: Path, name: str = DEFAULT, version: str = "2"):
    return read_manifest(model_root / name / version / "manifest.json")


def assert_error(response, status: int, code: str, item: int | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["item"] == item
    return error


def test_predict_arrays_with_manifest_thresholds(client: TestClient, reference, model_root) -> None:
    data = items(5)
    response = client.post("/predict", json={"inputs": data.tolist()})
    assert response.status_code == 200, response.text
    body = response.json()
    manifest = manifest_of(model_root)
    assert (body["model"], body["version"], body["score"]) == (DEFAULT, "2", "msp")
    assert body["threshold"] == manifest.calibration.scores[ScoreName.MSP].threshold
    assert (body["threshold_source"], body["score_direction"]) == ("manifest", "higher_is_in")
    logits = reference.logits(data)
    scores = compute_scores(logits)
    for index, prediction in enumerate(body["predictions"]):
        assert prediction["class_index"] == int(logits[index].argmax())
        assert prediction["label"] == manifest.classes[prediction["class_index"]]
        for score in ScoreName:
            assert prediction["scores"][score] == pytest.approx(scores[score][index], abs=1e-4)
        assert prediction["confidence"] == prediction["scores"]["msp"]
        accepted = prediction["scores"]["msp"] >= body["threshold"]
        assert prediction["decision"] == ("accept" if accepted else "reject")
        assert prediction["ood"] is not accepted
        assert "top_k" not in prediction and "probabilities" not in prediction


def test_predict_png_images(client: TestClient, model_root) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    image_response = client.post("/predict", json={"inputs": [{"image": png_b64(pixels)}] * 2})
    raw_response = client.post(
        "/predict",
        json={"inputs": [pixels[None].astype(float).tolist()], "preprocessed": False},
    )
    assert image_response.status_code == raw_response.status_code == 200
    from_image = image_response.json()["predictions"]
    from_raw = raw_response.json()["predictions"][0]
    assert from_image[0] == from_image[1]
    assert from_image[0]["scores"] == pytest.approx(from_raw["scores"], abs=1e-5)


def test_rgb_model_by_name_with_jpeg(client: TestClient) -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    response = client.post(
        "/models/tiny-rgb/predict", json={"inputs": [{"image": png_b64(pixels, fmt="JPEG")}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "tiny-rgb"


def test_named_version(client: TestClient) -> None:
    response = client.post(
        f"/models/{DEFAULT}/versions/1/predict", json={"inputs": items(1).tolist()}
    )
    assert response.status_code == 200
    assert response.json()["version"] == "1"


def test_top_k_and_probabilities(client: TestClient) -> None:
    response = client.post(
        "/predict", json={"inputs": items(2).tolist(), "top_k": 3, "return_probabilities": True}
    )
    prediction = response.json()["predictions"][0]
    assert len(prediction["probabilities"]) == 10
    assert sum(prediction["probabilities"]) == pytest.approx(1.0)
    top = prediction["top_k"]
    assert top[0]["class_index"] == prediction["class_index"]
    assert [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)


def test_request_threshold_overrides(client: TestClient, model_root) -> None:
    data = items(4).tolist()
    everyone_out = client.post("/predict", json={"inputs": data, "threshold": 1.0}).json()
    assert everyone_out["threshold_source"] == "request"
    assert all(p["decision"] == "reject" for p in everyone_out["predictions"])
    energy = client.post(
        "/predict", json={"inputs": data, "score": "energy", "target_tpr": 0.5}
    ).json()
    quantiles = manifest_of(model_root).calibration.scores[ScoreName.ENERGY].quantiles
    assert energy["score"] == "energy"
    assert energy["score_direction"] == "lower_is_in"
    assert energy["threshold"] == threshold_from_quantiles(quantiles, 0.5, ScoreName.ENERGY)
    for prediction in energy["predictions"]:
        accepted = prediction["scores"]["energy"] <= energy["threshold"]
        assert prediction["decision"] == ("accept" if accepted else "reject")


def test_settings_thresholds(make_client: Callable[..., TestClient], model_root) -> None:
    client = make_client(
        default_score="max_logit",
        model_thresholds={DEFAULT: {"target_tpr": 0.8}},
        allow_threshold_override=False,
    )
    body = client.post("/predict", json={"inputs": items(1).tolist()}).json()
    quantiles = manifest_of(model_root).calibration.scores[ScoreName.MAX_LOGIT].quantiles
    assert body["score"] == "max_logit"
    assert body["threshold"] == threshold_from_quantiles(quantiles, 0.8, ScoreName.MAX_LOGIT)
    assert (body["threshold_source"], body["target_tpr"]) == ("settings", 0.8)
    refused = client.post("/predict", json={"inputs": items(1).tolist(), "threshold": 0.2})
    assert_error(refused, 403, "override_not_allowed")


# --- bad input: always 4xx, machine-readable, naming the item ---------------------------------


def with_item(index: int, value) -> dict:
    data = items(3).tolist()
    data[index] = value
    return {"inputs": data}


@pytest.mark.parametrize(
    ("body", "status", "code", "item"),
    [
        (with_item(1, items(1, shape=(1, 27, 28))[0].tolist()), 422, "invalid_input", 1),
        (with_item(2, [[[1.0, 2.0], [3.0]]]), 422, "invalid_input", 2),
        (with_item(0, [[["a"] * 28] * 28]), 422, "invalid_request", 0),
        (with_item(1, [[[True] * 28] * 28]), 422, "invalid_request", 1),
        (with_item(2, [[[None] * 28] * 28]), 422, "invalid_request", 2),
        (with_item(1, 5), 422, "invalid_request", 1),
        (with_item(2, {"image": "abc", "extra": 1}), 422, "invalid_request", 2),
        (with_item(1, {"image": "%%%"}), 422, "invalid_image", 1),
        ({"inputs": []}, 422, "invalid_request", None),
        ({"inputs": items(1).tolist(), "score": "nope"}, 422, "invalid_request", None),
        ({"inputs": items(1).tolist(), "top_k": 11}, 422, "invalid_input", None),
        ({"inputs": items(1).tolist(), "top_k": 0}, 422, "invalid_request", None),
        ({"inputs": items(1).tolist(), "target_tpr": 0}, 422, "invalid_request", None),
        (
            {"inputs": items(1).tolist(), "threshold": 0.5, "target_tpr": 0.9},
            422,
            "invalid_request",
            None,
        ),
        ({"inputs": items(1).tolist(), "unknown": 1}, 422, "invalid_request", None),
        ({"items": []}, 422, "invalid_request", None),
        ([1, 2], 422, "invalid_request", None),
    ],
)
def test_bad_input_is_a_4xx_naming_the_item(client: TestClient, body, status, code, item) -> None:
    assert_error(client.post("/predict", json=body), status, code, item)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e39", "1e999"])
def test_non_finite_numbers_never_become_500s(client: TestClient, token: str) -> None:
    data = items(2).tolist()
    data[1][0][0][0] = 12345.0
    text = json.dumps({"inputs": data}).replace("12345.0", token)
    response = client.post("/predict", content=text, headers={"content-type": "application/json"})
    error = assert_error(response, 422, "invalid_input", 1)
    assert "NaN or infinity" in error["message"]


def test_validation_errors_do_not_echo_input(client: TestClient) -> None:
    secret = "SECRET-PAYLOAD-" * 50
    response = client.post("/predict", json={"inputs": [secret], "score": secret})
    assert response.status_code == 422
    assert "SECRET" not in response.text
    assert len(response.text) < 4000
    for detail in response.json()["error"]["details"]:
        assert set(detail) == {"loc", "type", "msg"}


def test_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"inputs": [', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "malformed_json")


def test_wrong_content_type(client: TestClient) -> None:
    response = client.post(
        "/predict",
        content=b"inputs=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415, "unsupported_media_type")


def test_unknown_model_and_version(client: TestClient) -> None:
    body = {"inputs": items(1).tolist()}
    assert_error(client.post("/models/nope/predict", json=body), 404, "model_not_found")
    # ".." as a name: test_hardening.py::test_path_traversal_in_model_name drives the app with
    # the raw path, since HTTP clients may normalise "/models/%2e%2e/predict" away first
    assert_error(
        client.post(f"/models/{DEFAULT}/versions/9/predict", json=body), 404, "model_not_found"
    )
    assert_error(
        client.post(f"/models/{DEFAULT}/versions/x1/predict", json=body), 404, "model_not_found"
    )
    assert_error(client.post("/models/UPPER/predict", json=body), 404, "model_not_found")


def test_non_finite_output_row_gets_its_own_error(client: TestClient) -> None:
    data = items(3)
    data[2] = 3e38  # finite float32, but the Gemm overflows to inf
    response = client.post("/predict", json={"inputs": data.tolist()})
    error = assert_error(response, 422, "non_finite_output", 2)
    assert "non-finite" in error["message"]
    assert client.post("/predict", json={"inputs": data[:2].tolist()}).status_code == 200


def test_too_many_items(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_items_per_request=4)
    assert_error(client.post("/predict", json={"inputs": items(5).tolist()}), 413, "too_many_items")


def test_image_pixel_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_image_pixels=1000)
    image = png_b64(np.zeros((40, 40), np.uint8))
    body = {"inputs": [items(1)[0].tolist(), {"image": image}]}
    assert_error(client.post("/predict", json=body), 413, "image_too_large", 1)


def test_body_limit_with_content_length(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=4096)
    response = client.post("/predict", json={"inputs": items(1).tolist()})
    assert_error(response, 413, "payload_too_large")


def test_body_limit_with_chunked_body(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=4096)
    payload = json.dumps({"inputs": items(1).tolist()}).encode()

    def chunks():
        for start in range(0, len(payload), 1000):
            yield payload[start : start + 1000]

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_error(response, 413, "payload_too_large")
    metrics = client.get("/metrics").text
    assert 'ood_http_requests_total{method="POST",route="/predict",status="413"}' in metrics
