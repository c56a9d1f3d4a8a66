"""Live end-to-end: the real service, a real Prometheus and a real Alertmanager, on 127.0.0.1.

This is the user's path with shorter clocks: the service runs from the CLI in docs/contracts.md
with the default model, and scripts/monitoring_stack.py starts Prometheus and Alertmanager with
configs derived from the shipped files (1 s scrape/evaluation intervals, every `for:` cut to 5 s,
Alertmanager group_wait 1 s; expressions, windows and levels as shipped).

1. In-distribution traffic (Fashion-MNIST test images as PNG): no alert fires.
2. Out-of-distribution traffic (uniform noise and letters): OODRateHigh goes pending, then firing
   (Prometheus /api/v1/alerts), reaches Alertmanager (/api/v2/alerts) and the example webhook
   receiver.

Bounded: every wait has a monotonic deadline, all processes are stopped in `finally`, and the logs
of every process are printed when the test fails.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.deploy.conftest import REPO, load_script

pytestmark = pytest.mark.slow

MODEL_NAME = "fashion-mnist-logitnorm"
FASHION_MNIST_REL = Path("usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
BATCH = 32
MAX_FOR_S = 5.0


def _fashion_mnist_test_images() -> Path | None:
    roots = [Path(os.environ["OOD_DATA_ROOT"])] if os.environ.get("OOD_DATA_ROOT") else []
    roots += [REPO / ".data", Path("/")]
    for root in roots:
        if (root / FASHION_MNIST_REL).is_file():
            return root / FASHION_MNIST_REL
    return None


def _read_idx_images(path: Path, limit: int) -> np.ndarray:
    """uint8 images (N, 28, 28) from an idx3 file (magic 0x00000803, big-endian dims)."""
    data = gzip.decompress(path.read_bytes())
    magic, count, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    assert magic == 0x803, f"{path} is not an idx3 image file"
    n = min(int(count), limit)
    return np.frombuffer(data[16 : 16 + n * rows * cols], dtype=np.uint8).reshape(n, rows, cols)


def _png_b64(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _ood_images(count: int, seed: int = 0) -> list[np.ndarray]:
    """Uniform noise and capital letters drawn in white on black (what a broken camera or a
    document scanner would send to a clothing classifier)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, size=(28, 28), dtype=np.uint8) for _ in range(count // 2)]
    font = ImageFont.load_default()
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for i in range(count - len(images)):
        canvas = Image.new("L", (14, 14), 0)
        ImageDraw.Draw(canvas).text((3, 1), letters[i % len(letters)], fill=255, font=font)
        images.append(np.asarray(canvas.resize((28, 28), Image.Resampling.BILINEAR)))
    return images


class Traffic(threading.Thread):
    """Posts batches of PNG items to /predict until stopped; `mode` switches the input pool."""

    def __init__(self, url: str, pools: dict[str, list[str]]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.pools = pools
        self.mode = "id"
        self.decisions: dict[str, Counter[str]] = {m: Counter() for m in pools}
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        import httpx

        cursor = 0
        with httpx.Client(timeout=10.0) as client:
            while not self._stop_event.is_set():
                mode = self.mode
                pool = self.pools[mode]
                items = [{"image": pool[(cursor + i) % len(pool)]} for i in range(BATCH)]
                cursor += BATCH
                try:
                    response = client.post(self.url, json={"inputs": items})
                    if response.status_code != 200:
                        self.errors.append(f"{response.status_code}: {response.text[:300]}")
                    else:
                        for prediction in response.json()["predictions"]:
                            self.decisions[mode][prediction["decision"]] += 1
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                self._stop_event.wait(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=15)

    def reject_share(self, mode: str) -> float:
        counts = self.decisions[mode]
        total = counts["accept"] + counts["reject"]
        return counts["reject"] / total if total else float("nan")


def _wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Call `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the server may not answer yet: keep polling
            last_error = exc
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})")


def _preconditions() -> tuple[Path, Path]:
    for binary in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} not installed (Debian: prometheus, prometheus-alertmanager)")
    if not (REPO / "service" / "__main__.py").is_file():
        pytest.skip("the service CLI (python -m service) is not in this checkout")
    # OOD_LIVE_TEST_MODEL=<repository>/<name> runs the test against another model directory.
    model = Path(os.environ.get("OOD_LIVE_TEST_MODEL") or REPO / "models" / MODEL_NAME)
    if model.name != MODEL_NAME:
        pytest.skip(f"OOD_LIVE_TEST_MODEL must name a directory called {MODEL_NAME}")
    if not model.is_dir():
        pytest.skip(
            f"models/{MODEL_NAME} is absent: the live test needs the real default model (a tiny "
            "random model cannot tell in- from out-of-distribution inputs)"
        )
    images = _fashion_mnist_test_images()
    if images is None:
        pytest.skip("Fashion-MNIST test images not found (scripts/fetch_data.sh, or Debian "
                    "package dataset-fashion-mnist)")  # fmt: skip
    return model, images


def test_ood_traffic_pages_through_prometheus_and_alertmanager(tmp_path: Path) -> None:
    model, images_path = _preconditions()
    stack_module = load_script("monitoring_stack")

    # A model repository with the default model only: other models would sit idle and
    # (rightly) raise OODNoTraffic.
    model_dir = tmp_path / "models"
    shutil.copytree(model, model_dir / MODEL_NAME)
    port = stack_module.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OOD_")}
    env.update(OOD_PROVIDERS='["CPUExecutionProvider"]', OOD_INTRA_OP_THREADS="1")
    service_log = tmp_path / "service.log"
    base = f"http://127.0.0.1:{port}"

    id_pool = [_png_b64(img) for img in _read_idx_images(images_path, 512)]
    ood_pool = [_png_b64(img) for img in _ood_images(256)]

    service: subprocess.Popen[bytes] | None = None
    traffic: Traffic | None = None
    stack = stack_module.MonitoringStack(
        service_targets=[f"127.0.0.1:{port}"], workdir=tmp_path / "stack", fast=True,
        max_for=MAX_FOR_S,
    )  # fmt: skip
    failed = True
    try:
        with open(service_log, "wb") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port),
                 "--model-dir", str(model_dir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO, env=env,
            )  # fmt: skip
        stack_module.wait_http_ok(f"{base}/readyz", time.monotonic() + 60, service)

        # ---- phase 1: in-distribution traffic, then the monitoring stack -------------------------
        traffic = Traffic(f"{base}/predict", {"id": id_pool, "ood": ood_pool})
        traffic.start()
        stack.start(timeout=30)

        def scraped() -> bool:
            ratio = stack.query(f'ood:reject_ratio:rate5m{{model="{MODEL_NAME}"}}')
            level = stack.query(f'ood:reject_ratio_warning_level{{model="{MODEL_NAME}"}}')
            items = stack.query(f'ood:items:rate5m{{model="{MODEL_NAME}"}} > 0')
            # the service exports 1 - TPR of its threshold; the levels scale with it
            expected = stack.query(f'ood:expected_reject_ratio{{model="{MODEL_NAME}"}}')
            return bool(ratio and level and items and expected)

        _wait_for("Prometheus to scrape predictions and record the OOD ratio", scraped, 30)
        phase1_start = time.monotonic()
        time.sleep(3 * MAX_FOR_S)  # long enough for any wrongly-triggered alert to fire
        assert not traffic.errors, traffic.errors[:5]
        active = stack.prometheus_alerts()
        assert active == [], f"alerts under in-distribution traffic: {active}"
        window = int(time.monotonic() - phase1_start)
        fired = stack.query(f'count_over_time(ALERTS{{alertstate="firing"}}[{window}s])')
        assert fired == [], f"alerts fired during the in-distribution phase: {fired}"
        assert stack.alertmanager_alerts() == []
        ratio_id = float(
            stack.query(f'ood:reject_ratio:rate5m{{model="{MODEL_NAME}"}}')[0]["value"][1]
        )
        knobs = {
            name: float(stack.query(f'{series}{{model="{MODEL_NAME}"}}')[0]["value"][1])
            for name, series in (
                ("expected", "ood:expected_reject_ratio"),
                ("warning", "ood:reject_ratio_warning_level"),
                ("floor", "ood:reject_ratio_warning_floor"),
                ("factor", "ood:reject_ratio_warning_factor"),
            )
        }
        print(f"in-distribution: Prometheus OOD ratio {ratio_id:.3f}, "
              f"client-side reject share {traffic.reject_share('id'):.3f}, "
              f"expected {knobs['expected']:.3f}, "
              f"warning level {knobs['warning']:.3f}")  # fmt: skip
        # the level the service's own threshold implies: max(floor, factor x expected)
        implied = max(knobs["floor"], knobs["factor"] * knobs["expected"])
        assert knobs["warning"] == pytest.approx(implied)
        assert ratio_id < 0.2

        # ---- phase 2: out-of-distribution traffic ------------------------------------------------
        traffic.mode = "ood"
        t0 = time.monotonic()

        def alert_state(name: str) -> str | None:
            for alert in stack.prometheus_alerts():
                if alert["labels"]["alertname"] == name and alert["labels"]["model"] == MODEL_NAME:
                    return alert["state"]
            return None

        _wait_for("OODRateHigh pending", lambda: alert_state("OODRateHigh") == "pending", 30, 0.1)
        t_pending = time.monotonic() - t0
        _wait_for("OODRateHigh firing", lambda: alert_state("OODRateHigh") == "firing", 30)
        t_firing = time.monotonic() - t0

        def in_alertmanager() -> dict[str, Any] | None:
            for alert in stack.alertmanager_alerts():
                labels = alert["labels"]
                if labels["alertname"] == "OODRateHigh" and labels.get("model") == MODEL_NAME:
                    return alert
            return None

        am_alert = _wait_for("OODRateHigh in Alertmanager", in_alertmanager, 20)
        assert am_alert["labels"]["severity"] == "warning"
        assert am_alert["annotations"]["runbook"] == "docs/deployment.md#runbook-oodratehigh"
        assert am_alert["status"]["state"] in {"active", "suppressed"}  # suppressed: inhibited

        def notified() -> bool:
            names = {
                a["labels"]["alertname"]
                for n in stack.webhook_notifications()
                for a in n["alerts"]
                if a["status"] == "firing"
            }
            return bool(names & {"OODRateHigh", "OODRateCritical"})

        _wait_for("a firing OOD alert at the webhook receiver", notified, 20)
        print(f"out-of-distribution: pending after {t_pending:.1f}s, firing after {t_firing:.1f}s, "
              f"client-side reject share {traffic.reject_share('ood'):.3f}")  # fmt: skip
        # Well above the 20% warning level. Not much higher: the default LogitNorm model rejects
        # the letters but accepts most uniform noise (see docs/ood-benchmark.md), and the mix is
        # half of each, so about half is rejected.
        assert traffic.reject_share("ood") > 0.3
        failed = False
    finally:
        if traffic is not None:
            traffic.stop()
        stack.stop()
        if service is not None:
            stack_module.stop_process(service)
        if failed:
            print(stack.logs())
            if service_log.exists():
                print(f"===== service ({service_log}) =====")
                print(service_log.read_text(errors="replace")[-20000:])
            if traffic is not None:
                print("traffic errors:", traffic.errors[:10], "decisions:", traffic.decisions)
