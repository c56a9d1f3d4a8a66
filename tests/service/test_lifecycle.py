"""Process-level reliability: a real ``python -m service`` on 127.0.0.1, signals and raw sockets.

Slow batches come from settings, not from test hooks in the service: a long ``max_delay_ms`` with
a large ``max_batch_size`` keeps requests queued (accepted, in flight) for as long as a test needs.
Every server process is killed in ``finally``; request counts and durations are bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import DEFAULT, items, metric_value

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(model_dir: Path, log: Path, **settings: object) -> Iterator[ServerProcess]:
    """``python -m service`` with ``OOD_*`` settings, ready on a free port; killed on exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOD_")}
    env.update(
        PYTHONPATH=str(ROOT),
        OOD_PROVIDERS='["CPUExecutionProvider"]',
        OOD_INTRA_OP_THREADS="1",
        OOD_LOG_LEVEL="info",
    )
    env.update({f"OOD_{key.upper()}": str(value) for key, value in settings.items()})
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--model-dir", str(model_dir), "--default-model", DEFAULT]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", port, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _wait_ready(server: ServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited {server.proc.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server not ready in {START_TIMEOUT_S} s:\n{server.log_text()}")


def queued_items(server: ServerProcess) -> float:
    text = httpx.get(server.url + "/metrics", timeout=2.0).text
    return metric_value(text, "ood_queue_depth_items", model=DEFAULT, version="2")


def wait_queued(server: ServerProcess, count: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while queued_items(server) < count:
        assert time.monotonic() < deadline, f"{count} items never queued"
        time.sleep(0.02)


def predict(url: str, timeout_s: float = 20.0) -> httpx.Response:
    return httpx.post(url + "/predict", json={"inputs": items(1).tolist()}, timeout=timeout_s)


def test_sigterm_with_requests_in_flight_answers_every_accepted_request(
    model_root: Path, tmp_path: Path
) -> None:
    """Readiness goes false first, every accepted request gets its 200, the process exits 0."""
    in_flight = 6
    settings = {
        "max_batch_size": 64,
        "max_delay_ms": 2000,  # the queued requests wait this long for their batch
        "shutdown_delay_s": 1.0,
        "graceful_shutdown_s": 8,
    }
    with serve(model_root, tmp_path / "server.log", **settings) as server:
        with ThreadPoolExecutor(in_flight) as pool:
            pending = [pool.submit(predict, server.url) for _ in range(in_flight)]
            wait_queued(server, in_flight)
            assert httpx.get(server.url + "/readyz", timeout=2).status_code == 200
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            while (readiness := httpx.get(server.url + "/readyz", timeout=2)).status_code == 200:
                time.sleep(0.02)  # new connections are still accepted: not ready comes first
            assert readiness.status_code == 503, readiness.text
            assert readiness.json()["status"] == "not_ready"
            assert time.monotonic() - signalled < settings["shutdown_delay_s"]
            assert not any(future.done() for future in pending)  # still in flight
            responses = [future.result(timeout=20) for future in pending]
        assert [r.status_code for r in responses] == [200] * in_flight, [r.text for r in responses]
        assert server.proc.wait(timeout=settings["graceful_shutdown_s"] + 5) == 0
        log = server.log_text()
    assert log.index("SIGTERM: not ready") < log.index("Shutting down")
    assert "Cancel" not in log and "Traceback" not in log


def test_requests_queued_past_the_grace_period_get_503_not_500(
    model_root: Path, tmp_path: Path
) -> None:
    """uvicorn cancels what is left when its graceful timeout fires; the app answers 503 first."""
    in_flight = 4
    settings = {"max_batch_size": 64, "max_delay_ms": 20_000, "graceful_shutdown_s": 1}
    with serve(model_root, tmp_path / "server.log", **settings) as server:
        with ThreadPoolExecutor(in_flight) as pool:
            pending = [pool.submit(predict, server.url) for _ in range(in_flight)]
            wait_queued(server, in_flight)
            server.proc.send_signal(signal.SIGTERM)
            responses = [future.result(timeout=20) for future in pending]
        assert server.proc.wait(timeout=10) == 0
        log = server.log_text()
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "shutting_down"
        assert response.headers["retry-after"] == "1"
    assert "failing 4 queued items with 503" in log
    assert "Cancel" not in log and "Traceback" not in log


def _slow_body_client(port: int, result: dict[str, object], stop: threading.Event) -> None:
    """Send headers promising 100 kB, then a byte every 0.2 s until the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
        sock.settimeout(0.2)
        started = time.monotonic()
        answer = b""
        while not stop.is_set() and time.monotonic() - started < 10:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                try:
                    sock.sendall(b" ")
                except OSError:
                    break
                continue
            if not chunk:
                break
            answer += chunk
        result["answer"] = answer
        result["seconds"] = time.monotonic() - started


def _slow_header_client(port: int, result: dict[str, object], stop: threading.Event) -> None:
    """Never finish the request line and headers: send a header byte every 0.2 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        sock.settimeout(0.2)
        started = time.monotonic()
        closed = False
        while not stop.is_set() and time.monotonic() - started < 10:
            try:
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:
                try:
                    sock.sendall(b"a")
                except OSError:
                    closed = True
                    break
            except OSError:
                closed = True
                break
        result["closed"] = closed
        result["seconds"] = time.monotonic() - started


def test_slow_loris_gets_408_and_others_are_served_meanwhile(
    model_root: Path, tmp_path: Path
) -> None:
    settings = {"body_timeout_s": 1.5, "header_timeout_s": 1.5}
    with serve(model_root, tmp_path / "server.log", **settings) as server:
        body_result: dict[str, object] = {}
        header_result: dict[str, object] = {}
        stop = threading.Event()
        slow = [
            threading.Thread(target=_slow_body_client, args=(server.port, body_result, stop)),
            threading.Thread(target=_slow_header_client, args=(server.port, header_result, stop)),
        ]
        try:
            for thread in slow:
                thread.start()
            time.sleep(0.3)
            latencies = []
            for _ in range(5):  # real requests while both slow clients hold their connections
                start = time.monotonic()
                response = predict(server.url, timeout_s=5)
                latencies.append(time.monotonic() - start)
                assert response.status_code == 200, response.text
            assert max(latencies) < 1.0, latencies
            for thread in slow:
                thread.join(timeout=8)
        finally:
            stop.set()
            for thread in slow:
                thread.join(timeout=5)
        answer = body_result["answer"]
        assert isinstance(answer, bytes)
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 408"), answer[:200]
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["code"] == "body_timeout"
        assert 1.4 < float(body_result["seconds"]) < 4.0  # type: ignore[arg-type]
        assert header_result["closed"] is True
        assert float(header_result["seconds"]) < 4.0  # type: ignore[arg-type]
        assert predict(server.url, timeout_s=5).status_code == 200
        metrics = httpx.get(server.url + "/metrics", timeout=2).text
    assert metric_value(metrics, "ood_http_requests_total", status="408") == 1


@pytest.mark.parametrize("damage", ["truncated", "hash_mismatch"])
def test_corrupted_model_file_stops_the_process_at_start(
    tmp_path: Path, damage: str, model_root: Path
) -> None:
    """A damaged model.onnx never serves: exit 3 and a log line naming the reason."""
    import shutil

    root = tmp_path / "models"
    shutil.copytree(model_root / DEFAULT / "2", root / DEFAULT / "2")
    onnx_file = root / DEFAULT / "2" / "model.onnx"
    data = onnx_file.read_bytes()
    if damage == "truncated":
        onnx_file.write_bytes(data[: len(data) // 2])
        expected = "bytes, manifest says"
    else:
        onnx_file.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # same size, other bytes
        expected = "sha256"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOD_")}
    env.update(PYTHONPATH=str(ROOT), OOD_PROVIDERS='["CPUExecutionProvider"]')
    command = [sys.executable, "-m", "service", "--port", str(free_port())]
    command += ["--model-dir", str(root), "--default-model", DEFAULT]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False
    )
    assert result.returncode == 3, result.stderr
    assert "cannot load model 'tiny' version '2'" in result.stderr
    assert expected in result.stderr
