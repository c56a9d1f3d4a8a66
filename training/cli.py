"""Command line: ``python -m training.cli {train,benchmark}`` (console script ``ood-train``).

``train`` runs one experiment and optionally exports it; it works unchanged under
``torchrun --nproc_per_node=N`` (DDP; rank 0 evaluates and exports). ``benchmark`` is what
``make model`` and ``make bench-ood`` run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from training.benchmark import BenchmarkOptions, run_benchmark
from training.data.cifar import load_cifar
from training.data.folders import load_image_folder
from training.data.paths import DataPaths
from training.distributed import setup, teardown
from training.evaluate import evaluate_odin
from training.losses import LOSS_NAMES
from training.models import MODELS
from training.pipeline import (
    ExperimentData,
    export_with_report,
    load_fashion_mnist_experiment,
    load_labelled_experiment,
    run_directory,
    summarize,
    train_and_score,
)
from training.tau_sweep import DEFAULT_TAUS
from training.train import TrainConfig


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one Fashion-MNIST model (DDP-ready), optionally export")
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        choices=["fashion-mnist", "cifar10", "cifar100", "folder"],
        help="fashion-mnist (with the five OOD sets) or your own data in --data-dir",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="cifar: the python-pickle directory; folder: a directory with train/ and test/, "
        "each holding one subfolder of PNG/JPEG images per class",
    )
    p.add_argument("--image-size", type=int, default=32, help="folder datasets: resize to this")
    p.add_argument("--color-mode", choices=["L", "RGB"], default="RGB", help="folder datasets")
    p.add_argument("--odin", action="store_true", help="also evaluate ODIN (offline only)")
    p.add_argument("--model", default="small_cnn", choices=sorted(MODELS))
    p.add_argument("--loss", default="logitnorm", choices=LOSS_NAMES)
    p.add_argument("--tau", type=float, default=0.1, help="LogitNorm temperature")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--train-subset", type=int, default=None, help="first N training images")
    p.add_argument("--test-subset", type=int, default=None)
    p.add_argument("--ood-subset", type=int, default=None)
    p.add_argument("--val-size", type=int, default=5000)
    p.add_argument(
        "--export",
        metavar="NAME",
        default=None,
        help="export to MODELS_DIR/NAME/VERSION (model, manifest, report and plots)",
    )
    p.add_argument("--version", default="1")
    p.add_argument("--models-dir", type=Path, default=Path("models"))


def _benchmark_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="tau sweep + CE/LogitNorm/IsoMax+ -> models/ and docs/")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--taus", type=float, nargs="+", default=list(DEFAULT_TAUS))
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--docs-dir", type=Path, default=Path("docs"))


def cmd_train(args: argparse.Namespace) -> None:
    config = TrainConfig(
        model=args.model,
        loss=args.loss,
        tau=args.tau if args.loss == "logitnorm" else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        augment=not args.no_augment,
        device=args.device,
    )
    context = setup(args.device)
    try:
        data = _load_data(args)
        run_dir = run_directory(args.runs_dir, config, data, context.world_size)
        if args.no_resume and context.is_main:
            (run_dir / "last.pt").unlink(missing_ok=True)
        run = train_and_score(config, data, context, run_dir)
        if run is None:
            return
        if args.odin:
            run.evaluation["ood"]["odin"] = evaluate_odin(
                run.model, data.test_images, data.ood, context.device
            )
        summary = summarize(run.evaluation)
        print(
            json.dumps(
                {
                    "accuracy": summary["accuracy"],
                    "ece": summary["ece"],
                    "avg_fpr95": {s: v["average"]["fpr95"] for s, v in summary["ood"].items()},
                },
                indent=2,
            )
        )
        if args.export:
            model_dir, entry = export_with_report(
                run, data, args.export, args.models_dir, args.version
            )
            parity = entry["onnx_parity_max_abs_diff"]
            print(f"exported {model_dir} with report and plots (ONNX parity {parity:.2e})")
    finally:
        teardown(context)


def _load_data(args: argparse.Namespace) -> ExperimentData:
    """The in-distribution data (and OOD sets) named on the command line."""
    subsets = {"train_subset": args.train_subset, "test_subset": args.test_subset}
    if args.dataset == "fashion-mnist":
        return load_fashion_mnist_experiment(
            DataPaths.resolve(args.data_root),
            seed=args.seed,
            val_size=args.val_size,
            ood_subset=args.ood_subset,
            **subsets,
        )
    if args.data_dir is None:
        raise SystemExit(f"--dataset {args.dataset} needs --data-dir")
    if args.dataset == "folder":
        train = load_image_folder(args.data_dir / "train", args.image_size, args.color_mode)
        test = load_image_folder(args.data_dir / "test", args.image_size, args.color_mode)
    else:
        which = 10 if args.dataset == "cifar10" else 100
        train = load_cifar(args.data_dir, which, "train")  # type: ignore[arg-type]
        test = load_cifar(args.data_dir, which, "test")  # type: ignore[arg-type]
    return load_labelled_experiment(
        train[:2], test[:2], list(train[2]), args.dataset, args.seed, args.val_size, **subsets
    )


def cmd_benchmark(args: argparse.Namespace) -> None:
    options = BenchmarkOptions(
        epochs=args.epochs,
        seed=args.seed,
        taus=tuple(args.taus),
        runs_root=args.runs_dir,
        models_root=args.models_dir,
        docs_root=args.docs_dir,
        data_root=args.data_root,
        device=args.device,
    )
    run_benchmark(replace(options))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ood-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _benchmark_parser(sub)
    args = parser.parse_args(argv)
    {"train": cmd_train, "benchmark": cmd_benchmark}[args.command](args)


if __name__ == "__main__":
    main()
