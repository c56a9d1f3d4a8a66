"""Before/after: the same scenarios against two checkouts of ``service/``, interleaved.

    python -m benchmarks.compare BEFORE_DIR [--rounds 2] [--duration 5] [--threads 1]

``BEFORE_DIR`` holds a ``service`` package (e.g. ``git worktree add /tmp/before HEAD``, or a copy
of ``service/`` made before a change); the "after" side is this checkout. Each round starts each
side's server in turn and runs every scenario once, so slow drifts of the shared machine's load
hit both sides alike; the table gives each side's median over the rounds and the after/before
ratio. Results: ``benchmarks/results/compare-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.serve_bench import (
    BATCH,
    ROOT,
    Payload,
    Server,
    build_payloads,
    latest_location,
    measure,
    running,
)
from service.repository import load_artifact

#: (payload key, connections, batching)
SCENARIOS = [
    ("predict-1", 1, True),
    ("predict-1", 64, True),
    ("predict-1", 64, False),
    ("predict-64", 8, True),
    ("v2-json-64", 8, True),
    ("v2-binary-1", 64, True),
    ("v2-binary-64", 8, True),
]


def run_side(
    root: Path,
    payloads: dict[str, Payload],
    args: argparse.Namespace,
    body_dir: Path,
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for batching in (True, False):
        wanted = [s for s in SCENARIOS if s[2] == batching]
        env = {
            "OOD_INTRA_OP_THREADS": str(args.threads),
            "OOD_MAX_BATCH_SIZE": str(BATCH if batching else 1),
        }
        with running(Server(args.model_dir, args.model, env, service_root=root)) as server:
            for key, connections, _ in wanted:
                m = measure(
                    server, payloads[key], connections, args.duration, body_dir,
                    scenario=f"{key} c={connections}" + ("" if batching else " off"),
                    threads=args.threads, batching=batching,
                )  # fmt: skip
                results[m.scenario] = {
                    "items_per_s": m.items_per_s,
                    "p50_ms": m.latency_ms["p50"],
                    "p99_ms": m.latency_ms["p99"],
                    "server_cpu_cores": m.server_cpu_cores,
                    "load_avg_1m": m.load_avg_1m,
                    "valid": m.valid,
                }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="directory holding the 'before' service package")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--model", default="fashion-mnist-logitnorm")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    args.model_dir = args.model_dir.resolve()
    manifest = load_artifact(latest_location(args.model_dir, args.model)).manifest
    payloads = build_payloads(manifest)
    sides = {"before": args.before.resolve(), "after": ROOT}
    rounds: dict[str, list[dict[str, dict[str, Any]]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="serve-compare-") as body_dir:
        for index in range(args.rounds):
            for side, root in sides.items():
                print(f"round {index + 1}, {side} ({root})", flush=True)
                rounds[side].append(run_side(root, payloads, args, Path(body_dir)))
    scenarios = list(rounds["after"][0])
    table = [
        "| scenario | before items/s | after items/s | after/before | before p99 ms "
        "| after p99 ms | before server CPU/item µs | after server CPU/item µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    summary: dict[str, Any] = {}
    for scenario in scenarios:
        med = {
            side: {
                key: statistics.median(r[scenario][key] for r in rounds[side])
                for key in ("items_per_s", "p99_ms", "server_cpu_cores")
            }
            for side in sides
        }
        cpu_us = {s: med[s]["server_cpu_cores"] / med[s]["items_per_s"] * 1e6 for s in sides}
        ratio = med["after"]["items_per_s"] / med["before"]["items_per_s"]
        summary[scenario] = {"median": med, "ratio": ratio, "cpu_us_per_item": cpu_us}
        table.append(
            f"| {scenario} | {med['before']['items_per_s']:,.0f} | "
            f"{med['after']['items_per_s']:,.0f} | {ratio:.2f}x | {med['before']['p99_ms']:.1f} | "
            f"{med['after']['p99_ms']:.1f} | {cpu_us['before']:.0f} | {cpu_us['after']:.0f} |"
        )
    print("\n".join(table))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"compare-{dt.date.today().isoformat()}.json"
    path.write_text(
        json.dumps(
            {
                "command": "python -m benchmarks.compare " + " ".join(argv or []),
                "before": str(args.before),
                "rounds": rounds,
                "summary": summary,
                "table": table,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
