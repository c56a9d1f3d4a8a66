"""The Fashion-MNIST OOD benchmark and the default models (``make model`` / ``make bench-ood``).

1. Sweep LogitNorm's tau and select it by the rule in :mod:`training.tau_sweep` (validation
   accuracy + synthetic validation outliers; never the test OOD sets).
2. Train the cross-entropy and IsoMax+ baselines with identical settings and seed.
3. Evaluate all three on the test split and the five OOD sets, calibrate thresholds on the
   validation split, export each to ``models/`` (the LogitNorm one is the service's default),
   and write ``docs/ood-benchmark.md`` with plots under ``docs/img/``.

Checkpoints under ``runs/`` make a re-run cheap: finished runs are reloaded, not retrained.
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from training.data.paths import DataPaths
from training.distributed import setup
from training.pipeline import (
    ExperimentData,
    ExperimentRun,
    export_with_report,
    load_fashion_mnist_experiment,
    run_directory,
    summarize,
    train_and_score,
)
from training.tau_sweep import DEFAULT_TAUS, TauCandidate, select_tau
from training.train import TrainConfig

MODEL_NAMES = {
    "logitnorm": "fashion-mnist-logitnorm",
    "cross_entropy": "fashion-mnist-ce",
    "isomax_plus": "fashion-mnist-isomax",
}
LOSS_TITLES = {"cross_entropy": "Cross-entropy", "logitnorm": "LogitNorm", "isomax_plus": "IsoMax+"}


@dataclass(frozen=True)
class BenchmarkOptions:
    """Knobs of one benchmark run; the defaults are what the committed numbers used."""

    epochs: int = 8
    seed: int = 0
    taus: tuple[float, ...] = DEFAULT_TAUS
    runs_root: Path = Path("runs")
    models_root: Path = Path("models")
    docs_root: Path = Path("docs")
    data_root: Path | None = None
    device: str = "auto"


def _train(config: TrainConfig, data: ExperimentData, options: BenchmarkOptions) -> ExperimentRun:
    context = setup(options.device)
    run_dir = run_directory(options.runs_root, config, data, context.world_size)
    run = train_and_score(config, data, context, run_dir)
    assert run is not None  # the benchmark is single-process
    return run


def sweep_tau(
    data: ExperimentData, options: BenchmarkOptions
) -> tuple[TauCandidate, list[TauCandidate], dict[float, ExperimentRun]]:
    """Train one LogitNorm model per tau; select on validation data only."""
    base = TrainConfig(
        loss="logitnorm", epochs=options.epochs, seed=options.seed, device=options.device
    )
    runs: dict[float, ExperimentRun] = {}
    candidates = []
    for tau in options.taus:
        print(f"== tau sweep: tau={tau:g}", flush=True)
        run = _train(replace(base, tau=tau), data, options)
        runs[tau] = run
        candidates.append(
            TauCandidate(tau, run.val_accuracy(data.val_labels), run.val_outlier_fpr95())
        )
    chosen = select_tau(candidates)
    print(f"== selected tau={chosen.tau:g} (validation data only)", flush=True)
    return chosen, candidates, runs


def run_benchmark(options: BenchmarkOptions) -> dict[str, Any]:
    """Everything above; returns the results dict that the markdown report is made from."""
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    paths = DataPaths.resolve(options.data_root)
    data = load_fashion_mnist_experiment(paths, seed=options.seed)
    chosen, candidates, sweep_runs = sweep_tau(data, options)
    runs: dict[str, ExperimentRun] = {"logitnorm": sweep_runs[chosen.tau]}
    for loss in ("cross_entropy", "isomax_plus"):
        print(f"== baseline: {loss}", flush=True)
        config = TrainConfig(
            loss=loss, tau=None, epochs=options.epochs, seed=options.seed, device=options.device
        )
        runs[loss] = _train(config, data, options)
    results: dict[str, Any] = {"models": {}, "tau_sweep": [], "meta": _machine_meta(options)}
    for candidate in candidates:
        sweep_eval = summarize(sweep_runs[candidate.tau].evaluation)
        results["tau_sweep"].append(
            {
                **candidate.__dict__,
                "selected": candidate.tau == chosen.tau,
                "test_accuracy": sweep_eval["accuracy"],
                "test_avg_fpr95": {s: v["average"]["fpr95"] for s, v in sweep_eval["ood"].items()},
            }
        )
    for loss, run in runs.items():
        name = MODEL_NAMES[loss]
        model_dir, entry = export_with_report(
            run, data, name, options.models_root, description=_description(loss, run)
        )
        results["models"][name] = entry
        parity = entry["onnx_parity_max_abs_diff"]
        print(f"exported {model_dir} (ONNX parity max abs diff {parity:.2e})", flush=True)
    _write_benchmark_docs(results, runs, data, options)
    return results


def _description(loss: str, run: ExperimentRun) -> str:
    tau = f" (tau={run.config.tau:g})" if loss == "logitnorm" else ""
    return (
        f"Fashion-MNIST {run.config.model} trained with {LOSS_TITLES[loss]}{tau}, "
        f"{run.config.epochs} epochs, seed {run.config.seed}"
    )


def _machine_meta(options: BenchmarkOptions) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "command": "python -m training.cli " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "epochs": options.epochs,
        "seed": options.seed,
        "taus": list(options.taus),
        "device": "cuda" if torch.cuda.is_available() and options.device != "cpu" else "cpu",
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def _write_benchmark_docs(
    results: dict[str, Any],
    runs: dict[str, ExperimentRun],
    data: ExperimentData,
    options: BenchmarkOptions,
) -> None:
    from training.benchmark_doc import render_benchmark_doc
    from training.visualize import benchmark_plots

    docs = options.docs_root
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "ood-benchmark.json").write_text(
        json.dumps(_jsonable(results), indent=2, sort_keys=True) + "\n"
    )
    images = benchmark_plots(results, runs, data, docs / "img")
    (docs / "ood-benchmark.md").write_text(render_benchmark_doc(results, images, docs))


def _jsonable(value: Any) -> Any:
    from training.report import to_jsonable

    return to_jsonable(value)
