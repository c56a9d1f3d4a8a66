"""Tests for training.plots (PNG files get written) and training.report (tables, JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.scores import ScoreName
from training import plots
from training.metrics import OodMetrics, reliability_bins
from training.report import (
    AVERAGE,
    average_over_sets,
    comparison_table,
    format_percent,
    markdown_report,
    markdown_table,
    ood_table,
    to_jsonable,
    with_averages,
    write_json_report,
    write_markdown,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _results() -> dict:
    """A tiny hand-built result: two models, two scores, two OOD sets."""
    return {
        "ce": {
            "accuracy": 0.912,
            "ece": 0.0351,
            "ood": {
                "msp": {
                    "mnist": {"fpr95": 0.50, "auroc": 0.90, "aupr_in": 0.80, "aupr_out": 0.70},
                    "noise": {"fpr95": 0.30, "auroc": 0.80, "aupr_in": 0.60, "aupr_out": 0.50},
                },
                "energy": {
                    "mnist": {"fpr95": 0.40, "auroc": 0.92, "aupr_in": 0.85, "aupr_out": 0.75},
                    "noise": {"fpr95": 0.20, "auroc": 0.96, "aupr_in": 0.95, "aupr_out": 0.97},
                },
            },
        },
        "logitnorm": {
            "accuracy": 0.9081,
            "ece": 0.0123,
            "ood": {
                "msp": {
                    "mnist": {"fpr95": 0.10, "auroc": 0.98, "aupr_in": 0.97, "aupr_out": 0.99},
                    "noise": {"fpr95": 0.001, "auroc": 0.9999, "aupr_in": 1.0, "aupr_out": 1.0},
                },
            },
        },
    }


# ---------------------------------------------------------------------------- report


def test_format_percent() -> None:
    assert format_percent(0.1234) == "12.3"
    assert format_percent(1.0) == "100.0"
    assert format_percent(0.00049) == "0.0"
    assert format_percent(None) == "–"
    assert format_percent(float("nan")) == "–"


def test_average_over_sets_ignores_stale_average() -> None:
    per_set = _results()["ce"]["ood"]["msp"]
    expected = {"fpr95": 0.40, "auroc": 0.85, "aupr_in": 0.70, "aupr_out": 0.60}
    assert average_over_sets(per_set) == pytest.approx(expected)
    stale = {**per_set, AVERAGE: {"fpr95": 9.0, "auroc": 9.0, "aupr_in": 9.0, "aupr_out": 9.0}}
    assert average_over_sets(stale) == pytest.approx(expected)
    with pytest.raises(ValueError, match="no OOD sets"):
        average_over_sets({})


def test_with_averages_adds_average_and_leaves_input_alone() -> None:
    results = _results()
    out = with_averages(results)
    assert AVERAGE not in results["ce"]["ood"]["msp"]
    assert out["ce"]["ood"]["msp"][AVERAGE]["fpr95"] == pytest.approx(0.40)
    assert out["ce"]["ood"]["energy"][AVERAGE]["auroc"] == pytest.approx(0.94)
    assert list(out["ce"]["ood"]["msp"]) == ["mnist", "noise", AVERAGE]
    assert with_averages(out) == out  # idempotent


def test_markdown_table_shape() -> None:
    table = markdown_table(["a", "b"], [["x|y", 1], ["z", 2.5]])
    assert table.splitlines() == ["| a | b |", "|:---|---:|", r"| x\|y | 1 |", "| z | 2.5 |"]
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a", "b"], [["only one"]])


def test_ood_table_rows() -> None:
    lines = ood_table(_results()).splitlines()
    assert lines[0] == "| Model | Score | OOD set | FPR95 ↓ | AUROC ↑ | AUPR-In ↑ | AUPR-Out ↑ |"
    assert lines[1] == "|:---|:---|:---|---:|---:|---:|---:|"
    assert lines[2] == "| ce | msp | mnist | 50.0 | 90.0 | 80.0 | 70.0 |"
    assert lines[3] == "| ce | msp | noise | 30.0 | 80.0 | 60.0 | 50.0 |"
    assert lines[4] == "| ce | msp | **average** | **40.0** | **85.0** | **70.0** | **60.0** |"
    assert lines[7] == "| ce | energy | **average** | **30.0** | **94.0** | **90.0** | **86.0** |"
    # (0.10 + 0.001) / 2 = 5.05% -> "5.0" or "5.1" depending on binary rounding; AUROC is exact.
    assert lines[10].startswith("| logitnorm | msp | **average** | **5.")
    assert "**99.0**" in lines[10]
    assert len(lines) == 2 + 3 + 3 + 3
    # Selecting a score, and a stale "average" entry in the input, don't add rows.
    only_energy = ood_table(with_averages(_results()), scores=["energy"]).splitlines()
    assert len(only_energy) == 2 + 3
    assert all("| energy |" in line for line in only_energy[2:])


def test_comparison_table_rows() -> None:
    lines = comparison_table(_results()).splitlines()
    assert lines[0] == (
        "| Model | Accuracy ↑ | ECE ↓ | msp FPR95 ↓ | msp AUROC ↑"
        " | energy FPR95 ↓ | energy AUROC ↑ |"
    )
    assert lines[2] == "| ce | 91.2 | 3.5 | 40.0 | 85.0 | 30.0 | 94.0 |"
    assert lines[3].startswith("| logitnorm | 90.8 | 1.2 | 5.")
    assert lines[3].endswith("| 99.0 | – | – |")  # no energy results for this model


def test_markdown_report_sections(tmp_path: Path) -> None:
    text = markdown_report(_results(), title="Fashion-MNIST", plots={"ROC": "plots/roc.png"})
    assert text.startswith("# Fashion-MNIST\n")
    assert "## Comparison (averages over OOD sets)" in text
    assert "| ce | msp | **average** |" in text
    assert "![ROC](plots/roc.png)" in text
    path = write_markdown(text, tmp_path / "out" / "report.md")
    assert path.read_text(encoding="utf-8") == text


def test_json_round_trip(tmp_path: Path) -> None:
    results = with_averages(_results())
    path = write_json_report({"results": results, "model": "ce"}, tmp_path / "sub" / "report.json")
    assert path == tmp_path / "sub" / "report.json"
    assert json.loads(path.read_text(encoding="utf-8")) == {"results": results, "model": "ce"}
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left


def test_json_converts_numpy_enums_dataclasses_and_non_finite(tmp_path: Path) -> None:
    report = {
        ScoreName.MSP: np.float32(0.5),
        "count": np.int64(3),
        "array": np.array([1.0, 2.0]),
        "tuple": (1, 2),
        "metrics": OodMetrics(fpr95=0.1, auroc=0.9, aupr_in=0.8, aupr_out=0.7),
        "bins": reliability_bins([0.2, 0.9], [0, 1], [0, 0], n_bins=2),
        "bad": [float("nan"), float("inf"), np.float64("-inf")],
        "path": tmp_path,
        1: True,
    }
    path = write_json_report(report, tmp_path / "r.json")
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    loaded = json.loads(text)
    assert loaded["msp"] == 0.5
    assert loaded["count"] == 3
    assert loaded["array"] == [1.0, 2.0]
    assert loaded["tuple"] == [1, 2]
    assert loaded["metrics"] == {"fpr95": 0.1, "auroc": 0.9, "aupr_in": 0.8, "aupr_out": 0.7}
    assert loaded["bins"]["counts"] == [1, 1]
    assert loaded["bad"] == [None, None, None]
    assert loaded["path"] == str(tmp_path)
    assert loaded["1"] is True
    with pytest.raises(TypeError, match="object"):
        to_jsonable({"x": object()})


# ---------------------------------------------------------------------------- plots


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_all_plots_write_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = rng.normal(2.0, 1.0, 300)
    ood_sets = {"mnist": rng.normal(0.0, 1.0, 200), "noise": rng.normal(-1.0, 0.5, 100)}

    written = [
        plots.score_histograms(ids, ood_sets, "msp", tmp_path / "a" / "hist.png", threshold=0.4),
        plots.score_histograms(-ids, {"same": -ids}, "energy", tmp_path / "hist_e.png", "Energy"),
        plots.roc_curves(ids, ood_sets, tmp_path / "roc.png"),
        plots.logit_norm_curve(
            {"cross_entropy": [1.0, 5.0, 9.0], "logitnorm": [1.0, 1.5, 1.6]},
            tmp_path / "norm.png",
            log_scale=True,
        ),
        plots.training_curves(
            {
                "ce": {"train_loss": [1.0, 0.5], "val_accuracy": [0.7, 0.8]},
                "logitnorm": {"train_loss": [2.0, 1.5]},
            },
            tmp_path / "curves.png",
            title="Training",
        ),
        plots.comparison_bars(_results(), tmp_path / "bars.png"),
        plots.comparison_bars(_results(), tmp_path / "bars_auroc.png", metric="auroc"),
    ]
    conf = rng.uniform(0.1, 1.0, 500)
    labels = (rng.uniform(size=500) > conf).astype(int)
    bins = reliability_bins(conf, np.zeros(500, int), labels)
    written.append(plots.reliability_diagram(bins, bins.ece(), tmp_path / "reliability.png"))

    for path in written:
        assert isinstance(path, Path)
        assert _is_png(path), path


def test_plots_reject_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="finite"):
        plots.score_histograms([1.0, np.nan], {}, "msp", tmp_path / "x.png")
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.comparison_bars({}, tmp_path / "y.png")
    assert not list(tmp_path.iterdir())
