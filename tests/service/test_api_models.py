"""GET /models, probes, /metrics and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.service.conftest import DEFAULT, items, metric_value


def test_probes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"][DEFAULT] == {"1": True, "2": True}


def test_list_models(client: TestClient) -> None:
    body = client.get("/models").json()
    assert body["default_model"] == DEFAULT
    models = {model["name"]: model for model in body["models"]}
    assert set(models) == {DEFAULT, "tiny-rgb"}
    tiny = models[DEFAULT]
    assert (tiny["default"], tiny["latest_version"]) == (True, "2")
    assert [v["version"] for v in tiny["versions"]] == ["1", "2"]


def test_model_details(client: TestClient) -> None:
    body = client.get(f"/models/{DEFAULT}").json()
    latest = body["versions"][-1]
    assert latest["ready"] is True
    assert latest["provider"] == "CPUExecutionProvider"
    assert len(latest["classes"]) == 10
    assert latest["default_score"] == "msp"
    thresholds = {t["score"]: t for t in latest["thresholds"]}
    assert thresholds["energy"]["direction"] == "lower_is_in"
    assert thresholds["msp"]["source"] == "manifest"
    assert thresholds["msp"]["threshold"] == latest["calibration"]["scores"]["msp"]["threshold"]
    assert latest["evaluation"]["accuracy"] == 0.5
    assert latest["training"]["loss"] == "logitnorm"
    one = client.get(f"/models/{DEFAULT}/versions/1").json()
    assert one["version"] == "1"


def test_unknown_models_are_404(client: TestClient) -> None:
    for path in ("/models/nope", f"/models/{DEFAULT}/versions/7", "/no/such/route"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] in {"model_not_found", "not_found"}


def test_metrics(client: TestClient) -> None:
    client.post("/predict", json={"inputs": items(3).tolist()})
    client.post("/predict", json={"inputs": [[1.0]]})
    text = client.get("/metrics").text
    assert (
        metric_value(
            text,
            "ood_model_info",
            model=DEFAULT,
            version="2",
            loss="logitnorm",
            tau="0.04",
            provider="CPUExecutionProvider",
        )
        == 1
    )
    assert metric_value(text, "ood_model_ready", model=DEFAULT, version="1") == 1
    assert metric_value(text, "ood_predictions_total", model=DEFAULT, version="2") == 3
    assert metric_value(text, "ood_score_energy_count", model=DEFAULT, version="2") == 3
    assert metric_value(text, "ood_inference_duration_seconds_count", model=DEFAULT) >= 1
    assert metric_value(text, "ood_requests_refused_total", model=DEFAULT, reason="invalid") == 1
    assert metric_value(text, "ood_http_requests_total", route="/predict", status="422") == 1
    assert metric_value(text, "ood_http_request_duration_seconds_count", route="/predict") == 2
    for name in ("ood_queue_depth_items", "ood_queue_wait_seconds", "ood_batch_size_items"):
        assert name in text


def test_unmatched_routes_share_one_label(client: TestClient) -> None:
    client.get("/random/path/1")
    client.get("/random/path/2")
    text = client.get("/metrics").text
    assert metric_value(text, "ood_http_requests_total", route="unmatched", status="404") == 2
    assert "/random/path" not in text


def test_openapi_documents_the_predict_body(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/PredictRequest"
    assert "examples" in body
    components = schema["components"]["schemas"]
    assert "inputs" in components["PredictRequest"]["properties"]
    assert "ImageItem" in components and "PredictResponse" in components
    assert "ServiceErrorResponse" in components
    assert client.get("/docs").status_code == 200


def test_docs_and_metrics_can_be_switched_off(make_client: Callable[..., TestClient]) -> None:
    client = make_client(enable_docs=False, enable_metrics=False)
    for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
        assert client.get(path).status_code == 404
    assert client.post("/predict", json={"inputs": items(1).tolist()}).status_code == 200


def test_unknown_methods_share_one_label(client: TestClient) -> None:
    """Any token may arrive as a method; the label set stays bounded."""
    client.request("XYZ1", "/predict")
    client.request("XYZ2", "/predict")
    text = client.get("/metrics").text
    assert metric_value(text, "ood_http_requests_total", method="OTHER", status="405") == 2
    assert "XYZ" not in text
