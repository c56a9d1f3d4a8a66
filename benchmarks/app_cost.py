"""Event-loop CPU per request inside the app, without HTTP: a steadier before/after measure.

    python -m benchmarks.app_cost [--service-root DIR] [--seconds 4] [--clients 64]

The app is built with ``create_app`` and driven through ASGI directly (no sockets, no uvicorn,
no wrk), with N concurrent clients on a uvloop event loop; each client sends its next request
when the previous answer arrives. It reports, per scenario, the main thread's CPU time per
request (``time.thread_time``: routing, parsing, batching, scores, metrics, encoding: what the
single event-loop thread must do per request) and the whole process's (ORT worker included). CPU
time is much less sensitive than throughput to other processes competing for the cores, so
two checkouts can be compared on a busy machine: ``--service-root`` imports ``service`` from
another directory (e.g. a copy made before a change).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = [
    # (payload key, clients, max_batch_size)
    ("predict-1", 64, 64),
    ("predict-1", 64, 1),
    ("predict-64", 8, 64),
    ("v2-json-1", 64, 64),
    ("v2-json-64", 8, 64),
    ("v2-binary-1", 64, 64),
    ("v2-binary-64", 8, 64),
]


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _request(app: Any, scope: dict[str, Any], body: bytes) -> int:
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


async def _measure(app: Any, payload: Any, clients: int, seconds: float) -> dict[str, float]:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", payload.content_type.encode()),
        (b"content-length", str(len(payload.body)).encode()),
    ]
    if payload.header_length is not None:
        headers.append((b"inference-header-content-length", str(payload.header_length).encode()))
    scope = _scope(payload.path, headers)
    count = 0
    bad = 0
    stop = 0.0

    async def client() -> None:
        nonlocal count, bad
        while time.monotonic() < stop:
            status = await _request(app, scope, payload.body)
            count += 1
            bad += status != 200

    stop = time.monotonic() + 0.5  # warm-up
    await asyncio.gather(*(client() for _ in range(clients)))
    count = bad = 0
    thread0, process0, wall0 = time.thread_time(), time.process_time(), time.monotonic()
    stop = wall0 + seconds
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.monotonic() - wall0
    thread = time.thread_time() - thread0
    process = time.process_time() - process0
    if bad:
        raise RuntimeError(f"{bad} of {count} answers were not 200")
    return {
        "requests": count,
        "requests_per_s": count / wall,
        "loop_cpu_us_per_request": thread / count * 1e6,
        "process_cpu_us_per_request": process / count * 1e6,
    }


async def _run_app(args: argparse.Namespace, max_batch: int, todo: list[Any]) -> list[Any]:
    from service.main import create_app
    from service.settings import Settings

    settings = Settings(
        model_dir=args.model_dir,
        default_model=args.model,
        intra_op_threads=args.threads,
        max_batch_size=max_batch,
        log_level="warning",
    )
    app = create_app(settings)
    results = []
    async with app.router.lifespan_context(app):
        for payload, clients in todo:
            results.append((payload, clients, await _measure(app, payload, clients, args.seconds)))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-root", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="fashion-mnist-logitnorm")
    parser.add_argument("--only", default="", help="comma-separated payload keys")
    args = parser.parse_args(argv)
    if args.service_root is not None:
        sys.path.insert(0, str(args.service_root.resolve()))
    import logging

    import uvloop

    logging.basicConfig(level=logging.WARNING)
    from benchmarks.serve_bench import build_payloads, latest_location
    from service.repository import load_artifact

    manifest = load_artifact(latest_location(args.model_dir, args.model)).manifest
    payloads = build_payloads(manifest)
    import service

    print(f"service from {Path(service.__file__).parent}, load {os.getloadavg()[0]:.2f}")
    only = set(filter(None, args.only.split(",")))
    out = []
    for max_batch in (64, 1):
        todo = [
            (payloads[key], clients)
            for key, clients, batch in SCENARIOS
            if batch == max_batch and (not only or key in only)
        ]
        if not todo:
            continue
        for payload, clients, result in uvloop.run(_run_app(args, max_batch, todo)):
            label = f"{payload.key} c={clients} max_batch={max_batch}"
            print(
                f"  {label:<32} {result['requests_per_s']:8.0f} req/s  loop CPU "
                f"{result['loop_cpu_us_per_request']:7.0f} µs/req  process CPU "
                f"{result['process_cpu_us_per_request']:7.0f} µs/req",
                flush=True,
            )
            out.append({"scenario": label, **result})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
