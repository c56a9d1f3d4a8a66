"""The real Triton HTTP client against a real ``python -m service`` on 127.0.0.1.

The other v2 tests build and read bodies with tritonclient's own helpers; this one lets the
client do everything itself (sockets, headers, binary framing, error parsing), as a platform
team's existing code would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.service.conftest import DEFAULT, items
from tests.service.test_lifecycle import ServerProcess, serve

http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(model_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("triton-live") / "server.log"
    with serve(model_root, log) as running:
        yield running


@pytest.fixture(scope="module")
def triton(server: ServerProcess) -> Iterator[object]:
    client = http.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=20.0)
    yield client
    client.close()


def test_health_and_metadata(triton) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(DEFAULT)
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    metadata = triton.get_model_metadata(DEFAULT)
    assert metadata["inputs"][0]["shape"] == [-1, 1, 28, 28]
    assert {o["name"] for o in metadata["outputs"]} >= {"logits", "msp", "energy", "is_ood"}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_matches_predict(triton, server: ServerProcess, binary: bool) -> None:
    import httpx

    x = items(5, seed=21)
    tensor = http.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    wanted = [
        http.InferRequestedOutput("logits", binary_data=binary),
        http.InferRequestedOutput("msp", binary_data=not binary),  # mixed binary and JSON
        http.InferRequestedOutput("is_ood", binary_data=binary),
        http.InferRequestedOutput("label", binary_data=binary),
    ]
    result = triton.infer(DEFAULT, [tensor], outputs=wanted, request_id="r-1")
    assert result.get_response()["id"] == "r-1"
    predict = httpx.post(
        server.url + "/predict", json={"inputs": x.tolist(), "return_probabilities": True}
    ).json()["predictions"]
    np.testing.assert_allclose(
        result.as_numpy("msp"), [p["confidence"] for p in predict], rtol=0, atol=1e-6
    )
    assert result.as_numpy("is_ood").tolist() == [p["ood"] for p in predict]
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == [p["label"] for p in predict]  # BYTES: bytes when binary, str in JSON
    assert result.as_numpy("logits").shape == (5, 10)


def test_errors_reach_the_client_as_messages(triton) -> None:
    with pytest.raises(InferenceServerException) as unknown:
        triton.get_model_metadata("no-such-model")
    assert "no-such-model" in str(unknown.value)
    with pytest.raises(InferenceServerException) as unsupported:
        triton.get_model_repository_index()  # a route this server does not have
    assert str(unsupported.value)  # a readable message, not a client crash
    bad = http.InferInput("input", [1, 1, 28, 27], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 1, 28, 27), np.float32))
    with pytest.raises(InferenceServerException) as wrong_shape:
        triton.infer(DEFAULT, [bad])
    assert "shape" in str(wrong_shape.value)
