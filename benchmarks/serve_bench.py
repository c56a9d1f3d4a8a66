"""Serving benchmark: wrk against the service on loopback, beside the raw ONNX Runtime ceiling.

    python -m benchmarks.serve_bench [--duration S] [--quick] [--threads 1,2] [--out DIR]

For each ONNX Runtime intra-op thread count (``--threads``), in one run:

1. **Ceiling.** The same model is loaded in this process exactly as the service loads it (same
   :class:`service.runtime.OnnxModel`, same session options and thread counts) and run back to
   back on batches of 64 and of 1 items for a few seconds each: items/s with no HTTP, no JSON,
   no Python server in between. No server is running while it is measured.
2. **Batching on** (``OOD_MAX_BATCH_SIZE=64``, the default): the service is started as a
   subprocess (``python -m service``) and loaded by ``wrk`` (closed loop: N connections, each
   sends its next request when the previous answer arrives): single-item ``/predict`` requests at
   1, 16 and 64 connections; 64-item requests; the same single-item and 64-item load through v2
   JSON and v2 binary tensors; and single-item requests paced (``benchmarks/lua/paced.lua``) to
   about half of the measured single-item saturation throughput, for the p99 target.
3. **Batching off** (``OOD_MAX_BATCH_SIZE=1``): single-item ``/predict`` at 1, 16 and 64.

Every response must be 200: a measurement with any other status, or a socket error, is marked
invalid. The 1-minute load average is recorded before each measurement, and the CPU time
(utime + stime from ``/proc/<pid>/stat``) of wrk and of the server over the measurement gives
their CPU shares. Results go to ``<out>/results/serve-<date>.json``, ``<out>/REPORT.md`` and PNG
plots in ``<out>/results/``. The machine is shared: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.manifest import Manifest
from service.repository import discover, load_artifact
from service.runtime import OnnxModel, RuntimeOptions
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "lua"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
BATCH = 64  # max_batch_size with batching on, and the size of the large requests
#: values are rounded to this many decimals in JSON bodies (a normalized 8-bit pixel step is
#: ~0.011, so 4 decimals lose nothing a client would send)
JSON_DECIMALS = 4

TARGETS = {
    "single_c64_vs_ceiling": 0.50,
    "batching_gain": 1.8,
    "predict_64_vs_ceiling": 0.85,
    "p99_half_saturation_ms": 20.0,
    "v2_binary_64_vs_ceiling": 0.90,
}


# --- payloads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """One request body as wrk sends it."""

    protocol: str  # predict | v2-json | v2-binary
    items: int
    path: str
    body: bytes
    content_type: str
    header_length: int | None = None

    @property
    def key(self) -> str:
        return f"{self.protocol}-{self.items}"


def build_payloads(manifest: Manifest) -> dict[str, Payload]:
    """Bodies for 1 and 64 items per protocol, from the manifest's golden (real test) images."""
    assert manifest.golden is not None, "the benchmark uses the manifest's golden images"
    shape = tuple(manifest.input.shape)
    golden = np.asarray(manifest.golden.inputs, dtype=np.float32).reshape(-1, *shape)
    payloads: dict[str, Payload] = {}
    for items in (1, BATCH):
        batch = np.round(golden[np.arange(items) % len(golden)], JSON_DECIMALS).astype(np.float32)
        nested = batch.astype(np.float64).round(JSON_DECIMALS).tolist()
        payloads[f"predict-{items}"] = Payload(
            "predict",
            items,
            "/predict",
            json.dumps({"inputs": nested}, separators=(",", ":")).encode(),
            "application/json",
        )
        infer_path = f"/v2/models/{manifest.name}/versions/{manifest.version}/infer"
        tensor: dict[str, Any] = {
            "name": manifest.input.name,
            "shape": [items, *shape],
            "datatype": "FP32",
        }
        flat = batch.astype(np.float64).round(JSON_DECIMALS).ravel().tolist()
        payloads[f"v2-json-{items}"] = Payload(
            "v2-json",
            items,
            infer_path,
            json.dumps({"inputs": [{**tensor, "data": flat}]}, separators=(",", ":")).encode(),
            "application/json",
        )
        raw = batch.astype("<f4").tobytes()
        header = json.dumps(
            {
                "inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
                "parameters": {"binary_data_output": True},
            },
            separators=(",", ":"),
        ).encode()
        payloads[f"v2-binary-{items}"] = Payload(
            "v2-binary",
            items,
            infer_path,
            header + raw,
            "application/octet-stream",
            header_length=len(header),
        )
    return payloads


# --- raw ONNX Runtime ceiling -------------------------------------------------------------------


def runtime_options(intra_op_threads: int) -> RuntimeOptions:
    """What :func:`service.registry.load_models` builds from the server's settings."""
    settings = Settings(intra_op_threads=intra_op_threads)
    return RuntimeOptions(
        providers=tuple(settings.providers),
        intra_op_threads=settings.intra_op_threads,
        inter_op_threads=settings.inter_op_threads,
        allow_spinning=settings.ort_allow_spinning,
    )


def measure_ceiling(model_dir: Path, name: str, threads: int, seconds: float) -> dict[str, Any]:
    """Items/s of back-to-back ``OnnxModel.run`` calls at batch 64 and batch 1, in this process."""
    location = latest_location(model_dir, name)
    model = OnnxModel.create(load_artifact(location), runtime_options(threads), warmup_batch=BATCH)
    shape = tuple(model.manifest.input.shape)
    result: dict[str, Any] = {"intra_op_threads": threads, "provider": model.provider}
    rng = np.random.default_rng(0)
    for batch_size in (BATCH, 1):
        batch = rng.standard_normal((batch_size, *shape)).astype(np.float32)
        for _ in range(10):
            model.run(batch)
        loadavg = load_average()
        cpu_before = time.process_time()
        runs = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            model.run(batch)
            runs += 1
        cpu = time.process_time() - cpu_before
        result[f"batch_{batch_size}"] = {
            "items_per_s": runs * batch_size / elapsed,
            "ms_per_run": elapsed / runs * 1000,
            "runs": runs,
            "seconds": elapsed,
            "cpu_cores": cpu / elapsed,
            "load_avg_1m": loadavg,
        }
    return result


def latest_location(model_dir: Path, name: str) -> Any:
    versions = [loc for loc in discover(model_dir) if loc.name == name]
    if not versions:
        raise SystemExit(f"model {name!r} not found under {model_dir}")
    return max(versions, key=lambda loc: int(loc.version))


# --- processes and CPU time ---------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """``python -m service`` in a subprocess with ``OOD_*`` settings."""

    model_dir: Path
    model: str
    env: dict[str, str]
    #: the directory holding the ``service`` package to run (another checkout for before/after)
    service_root: Path = ROOT
    #: ``module:attribute`` of a bare app (:mod:`benchmarks.floor_app`) to serve instead
    floor_app: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float = 120.0) -> None:
        env = {
            **os.environ,
            "OOD_DEFAULT_MODEL": self.model,
            "OOD_LOG_LEVEL": "warning",  # no access log: uvicorn logs each request at info
            **self.env,
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        host_port = ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.floor_app is None:
            argv = ["-m", "service", *host_port, "--model-dir", str(self.model_dir)]
        else:
            argv = ["-m", "uvicorn", self.floor_app, *host_port, "--log-level", "warning"]
        self.process = subprocess.Popen(
            [sys.executable, *argv],
            env=env,
            cwd=self.service_root,  # `python -m` imports from the working directory first
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.output()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/readyz", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.2)
        output = self.output()
        self.stop()
        raise RuntimeError(f"server not ready after {timeout_s} s:\n{output}")

    def output(self) -> str:
        if self.log is None:
            return ""
        self.log.seek(0)
        return str(self.log.read().decode(errors="replace"))[-4000:]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def check(self, payload: Payload) -> None:
        """One request through urllib: 200 and an answer for every item, or raise."""
        headers = {"Content-Type": payload.content_type}
        if payload.header_length is not None:
            headers["Inference-Header-Content-Length"] = str(payload.header_length)
        request = urllib.request.Request(self.url + payload.path, payload.body, headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                body = answer.read()
                header_length = answer.headers.get("Inference-Header-Content-Length")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{payload.key}: {exc.code} {exc.read()[:500]!r}") from None
        if payload.protocol == "predict":
            assert len(json.loads(body)["predictions"]) == payload.items
        else:
            header = json.loads(body[: int(header_length)] if header_length else body)
            outputs = {o["name"]: o for o in header["outputs"]}
            assert outputs["msp"]["shape"] == [payload.items], outputs["msp"]


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One wrk run against one server configuration."""

    scenario: str
    protocol: str
    items_per_request: int
    connections: int
    intra_op_threads: int
    batching: bool
    requests: int
    seconds: float
    requests_per_s: float
    items_per_s: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    valid: bool
    wrk_cpu_cores: float
    server_cpu_cores: float
    load_avg_1m: float
    paced_delay_ms: float | None = None
    ceiling_batch: int = BATCH
    ceiling_items_per_s: float = 0.0
    fraction_of_ceiling: float = 0.0
    command: str = ""

    @property
    def wrk_share(self) -> float:
        return self.wrk_cpu_cores / NCPU

    @property
    def server_share(self) -> float:
        return self.server_cpu_cores / NCPU


def run_wrk(
    server: Server,
    payload: Payload,
    connections: int,
    seconds: float,
    body_dir: Path,
    delay_ms: float | None = None,
) -> tuple[dict[str, Any], float, float, float, str]:
    """wrk's JSON summary, its CPU cores, the server's CPU cores, the load average, the command."""
    body_file = body_dir / f"{payload.key}.body"
    if not body_file.exists():
        body_file.write_bytes(payload.body)
    script = LUA / ("post.lua" if delay_ms is None else "paced.lua")
    args = [str(body_file), payload.content_type, str(payload.header_length or "")]
    if delay_ms is not None:
        args.append(f"{delay_ms:.3f}")
    command = [WRK, "-t1", f"-c{connections}", f"-d{max(round(seconds), 1)}s", "--timeout", "10s"]
    command += ["-s", str(script), server.url + payload.path, "--", *args]
    loadavg = load_average()
    with tempfile.TemporaryFile() as out:
        server_before = cpu_seconds(server.pid)
        start = time.monotonic()
        wrk = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        # wait without reaping: the zombie's /proc/<pid>/stat still holds its CPU time
        os.waitid(os.P_PID, wrk.pid, os.WEXITED | os.WNOWAIT)
        wall = time.monotonic() - start
        wrk_cpu = cpu_seconds(wrk.pid)
        server_cpu = cpu_seconds(server.pid) - server_before
        wrk.wait()
        out.seek(0)
        text = out.read().decode(errors="replace")
    line = next((x for x in text.splitlines() if x.startswith("WRK_JSON ")), None)
    if wrk.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({wrk.returncode}):\n{text}")
    shown = " ".join(_shorten(part) for part in command)
    return json.loads(line[len("WRK_JSON ") :]), wrk_cpu / wall, server_cpu / wall, loadavg, shown


def _shorten(part: str) -> str:
    path = Path(part)
    if path.is_absolute() and path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    if path.suffix == ".body":
        return f"<{path.name}>"
    return part


def measure(
    server: Server,
    payload: Payload,
    connections: int,
    seconds: float,
    body_dir: Path,
    *,
    scenario: str,
    threads: int,
    batching: bool,
    delay_ms: float | None = None,
    warmup_s: float = 1.0,
) -> Measurement:
    if server.floor_app is None:
        server.check(payload)
    if warmup_s > 0:
        run_wrk(server, payload, connections, warmup_s, body_dir, delay_ms)
    summary, wrk_cores, server_cores, loadavg, command = run_wrk(
        server, payload, connections, seconds, body_dir, delay_ms
    )
    duration = summary["duration_us"] / 1e6
    requests = int(summary["requests"])
    statuses = {str(k): int(v) for k, v in summary["statuses"].items()}
    errors = {k: int(v) for k, v in summary["socket_errors"].items()}
    valid = (
        requests > 0 and set(statuses) == {"200"} and statuses["200"] == requests
        and not any(errors.values()) and summary["non_2xx_3xx"] == 0
    )  # fmt: skip
    latency = {k: v / 1000 for k, v in summary["latency_us"].items()}
    rps = requests / duration
    measurement = Measurement(
        scenario=scenario,
        protocol=payload.protocol,
        items_per_request=payload.items,
        connections=connections,
        intra_op_threads=threads,
        batching=batching,
        requests=requests,
        seconds=duration,
        requests_per_s=rps,
        items_per_s=rps * payload.items,
        latency_ms=latency,
        statuses=statuses,
        socket_errors=errors,
        valid=valid,
        wrk_cpu_cores=wrk_cores,
        server_cpu_cores=server_cores,
        load_avg_1m=loadavg,
        paced_delay_ms=delay_ms,
        command=command,
    )
    state = "ok" if valid else f"INVALID statuses={statuses} errors={errors}"
    print(
        f"  {scenario:<28} c={connections:<3} {measurement.items_per_s:9.0f} items/s  "
        f"p50 {latency['p50']:6.2f}  p99 {latency['p99']:7.2f} ms  "
        f"wrk {wrk_cores:4.2f} server {server_cores:4.2f} cores  load {loadavg:.2f}  {state}",
        flush=True,
    )
    return measurement


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Config:
    seconds: float
    warmup_s: float
    ceiling_s: float
    threads: list[int]
    model_dir: Path
    model: str
    out: Path
    quick: bool


def run_threads(
    config: Config, threads: int, payloads: dict[str, Payload], body_dir: Path
) -> dict[str, Any]:
    print(f"intra_op_threads={threads}: raw ONNX Runtime ceiling", flush=True)
    ceiling = measure_ceiling(config.model_dir, config.model, threads, config.ceiling_s)
    for batch in (BATCH, 1):
        c = ceiling[f"batch_{batch}"]
        rate, per_run = c["items_per_s"], c["ms_per_run"]
        print(f"  ceiling batch {batch:<3} {rate:9.0f} items/s ({per_run:.3f} ms/run)")
    measurements: list[Measurement] = []
    base_env = {"OOD_INTRA_OP_THREADS": str(threads), "OOD_INTER_OP_THREADS": "1"}
    seconds, warmup = config.seconds, config.warmup_s

    def add(m: Measurement) -> Measurement:
        m.ceiling_batch = BATCH if m.batching or m.items_per_request == BATCH else 1
        m.ceiling_items_per_s = ceiling[f"batch_{m.ceiling_batch}"]["items_per_s"]
        m.fraction_of_ceiling = m.items_per_s / m.ceiling_items_per_s
        measurements.append(m)
        return m

    print(f"intra_op_threads={threads}: batching on (max_batch_size={BATCH})", flush=True)
    server = Server(config.model_dir, config.model, {**base_env, "OOD_MAX_BATCH_SIZE": str(BATCH)})
    with running(server):
        common = {"threads": threads, "batching": True, "warmup_s": warmup}
        single = payloads["predict-1"]
        by_c = {}
        for c in (1, 16, 64):
            by_c[c] = add(
                measure(server, single, c, seconds, body_dir, scenario="predict 1 item", **common)
            )
        for key in ("predict-64", "v2-json-1", "v2-json-64", "v2-binary-1", "v2-binary-64"):
            p = payloads[key]
            c = 64 if p.items == 1 else 8
            label = f"{p.protocol} {p.items} item{'s' if p.items > 1 else ''}"
            add(measure(server, p, c, seconds, body_dir, scenario=label, **common))
        # half of saturation: pace 16 connections to ~50% of the single-item c=64 throughput
        target = by_c[64].requests_per_s / 2
        connections = 16
        unloaded_ms = by_c[1].latency_ms["p50"]
        delay = max(connections / target * 1000 - unloaded_ms, 0.0)
        for attempt in range(3):
            half = measure(
                server, single, connections, seconds, body_dir,
                scenario="predict 1 item, half load", delay_ms=delay, **common,
            )  # fmt: skip
            ratio = half.requests_per_s / target
            if abs(ratio - 1) <= 0.1 or attempt == 2:
                break
            # cycle = delay + latency: keep the measured latency part, fix the delay part
            latency_part = connections / half.requests_per_s * 1000 - delay
            delay = max(connections / target * 1000 - latency_part, 0.0)
        add(half)
    print(f"intra_op_threads={threads}: batching off (max_batch_size=1)", flush=True)
    server = Server(config.model_dir, config.model, {**base_env, "OOD_MAX_BATCH_SIZE": "1"})
    with running(server):
        common = {"threads": threads, "batching": False, "warmup_s": warmup}
        for c in (1, 16, 64):
            add(measure(server, single, c, seconds, body_dir, scenario="predict 1 item", **common))
    print("framework floors (no parsing, no model)", flush=True)
    for app, label in (("raw", "floor: bare ASGI"), ("fastapi", "floor: bare FastAPI route")):
        floor = Server(config.model_dir, config.model, {}, floor_app=f"benchmarks.floor_app:{app}")
        with running(floor):
            add(measure(floor, single, 64, seconds, body_dir, scenario=label,
                        threads=threads, batching=True, warmup_s=warmup))  # fmt: skip
    return {
        "intra_op_threads": threads,
        "ceiling": ceiling,
        "saturation_single_rps": by_c[64].requests_per_s,
        "half_load_target_rps": target,
        "measurements": [_as_dict(m) for m in measurements],
        "targets": evaluate_targets(measurements),
    }


def _as_dict(m: Measurement) -> dict[str, Any]:
    data = asdict(m)
    data["wrk_cpu_share"] = m.wrk_share
    data["server_cpu_share"] = m.server_share
    return data


def _find(ms: list[Measurement], scenario: str, batching: bool, connections: int) -> Measurement:
    return next(
        m
        for m in ms
        if m.scenario == scenario and m.batching == batching and m.connections == connections
    )


def evaluate_targets(ms: list[Measurement]) -> list[dict[str, Any]]:
    on64 = _find(ms, "predict 1 item", True, 64)
    off64 = _find(ms, "predict 1 item", False, 64)
    big = _find(ms, "predict 64 items", True, 8)
    half = _find(ms, "predict 1 item, half load", True, 16)
    binary = _find(ms, "v2-binary 64 items", True, 8)
    rows = [
        (
            "single-item /predict at 64 connections, share of the batch-64 ceiling",
            on64.fraction_of_ceiling,
            ">=",
            TARGETS["single_c64_vs_ceiling"],
            "ratio",
        ),
        (
            "batching gain: single-item c=64, batching on / off",
            on64.items_per_s / off64.items_per_s,
            ">=",
            TARGETS["batching_gain"],
            "x",
        ),
        (
            "64-item /predict requests, share of the batch-64 ceiling",
            big.fraction_of_ceiling,
            ">=",
            TARGETS["predict_64_vs_ceiling"],
            "ratio",
        ),
        (
            f"p99 at half of saturation ({half.requests_per_s:.0f} of "
            f"{on64.requests_per_s:.0f} req/s offered, "
            f"{half.requests_per_s / on64.requests_per_s:.0%})",
            half.latency_ms["p99"],
            "<=",
            TARGETS["p99_half_saturation_ms"],
            "ms",
        ),
        (
            "64-item v2 binary requests, share of the batch-64 ceiling",
            binary.fraction_of_ceiling,
            ">=",
            TARGETS["v2_binary_64_vs_ceiling"],
            "ratio",
        ),
    ]
    return [
        {
            "target": name,
            "measured": value,
            "op": op,
            "goal": goal,
            "unit": unit,
            "met": value >= goal if op == ">=" else value <= goal,
        }
        for name, value, op, goal, unit in rows
    ]


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("fastapi", "starlette", "uvicorn", "onnxruntime", "numpy", "pydantic"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package)
    wrk_version = subprocess.run([WRK, "--version"], capture_output=True, text=True).stdout
    return {
        "cpu": cpu,
        "cores": NCPU,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": wrk_version.splitlines()[0].strip() if wrk_version else "unknown",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=None, help="seconds per measurement")
    parser.add_argument("--quick", action="store_true", help="short runs, first thread count only")
    parser.add_argument("--threads", default="1,2", help="ORT intra-op thread counts to compare")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="fashion-mnist-logitnorm")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    parser.add_argument(
        "--render", type=Path, help="only rewrite REPORT.md and the plots from this results JSON"
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        from benchmarks.report import write_outputs

        results = json.loads(args.render.read_text())
        date = results["started"][:10]
        quick = args.render.stem.endswith("-quick")
        for path in write_outputs(results, args.out, date, quick=quick):
            print(f"wrote {path}")
        return
    threads = [int(t) for t in args.threads.split(",")]
    config = Config(
        seconds=args.duration or (3.0 if args.quick else 8.0),
        warmup_s=1.0,
        ceiling_s=1.5 if args.quick else 3.0,
        threads=threads[:1] if args.quick else threads,
        model_dir=args.model_dir.resolve(),
        model=args.model,
        out=args.out,
        quick=args.quick,
    )
    location = latest_location(config.model_dir, config.model)
    manifest = load_artifact(location).manifest
    payloads = build_payloads(manifest)
    started = dt.datetime.now(dt.UTC)
    command = "python -m benchmarks.serve_bench " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "command": command.strip(),
        "machine": machine_info(),
        "model": {
            "name": manifest.name,
            "version": manifest.version,
            "input": manifest.input.shape,
        },
        "settings": {
            "seconds_per_measurement": config.seconds,
            "warmup_s": config.warmup_s,
            "ceiling_s": config.ceiling_s,
            "max_batch_size": BATCH,
            "max_delay_ms": Settings().max_delay_ms,
            "json_decimals": JSON_DECIMALS,
            "body_bytes": {key: len(p.body) for key, p in payloads.items()},
        },
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as body_dir:
        for t in config.threads:
            results["runs"].append(run_threads(config, t, payloads, Path(body_dir)))
    results["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    from benchmarks.report import write_outputs

    paths = write_outputs(results, config.out, started.date().isoformat(), quick=config.quick)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
