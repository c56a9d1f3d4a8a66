"""``metrics_port``: /metrics moves off the API port onto its own listener, for the app's life."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.service.conftest import items, metric_value


def test_metrics_served_on_their_own_port_only(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(metrics_port=0))  # 0: any free port, read back from the state
    with TestClient(app) as client:
        assert client.post("/predict", json={"inputs": items(2).tolist()}).status_code == 200
        assert client.get("/metrics").status_code == 404  # not on the API port
        host, port = app.state.ood.metrics_address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    assert metric_value(text, "ood_predictions_total", decision="accept") + metric_value(
        text, "ood_predictions_total", decision="reject"
    ) == 2
    assert app.state.ood.metrics_address is None
    with socket.socket() as probe:  # the listener is closed with the app
        assert probe.connect_ex((host, port)) != 0


def test_metrics_stay_on_the_api_port_by_default(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200
