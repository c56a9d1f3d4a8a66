"""Evaluation reports: JSON files and Markdown tables built from one plain results shape.

The results shape (everything is a fraction in ``[0, 1]``; tables show percentages with one
decimal)::

    results = {
        "<model name>": {                       # e.g. "fashion-mnist-logitnorm"
            "accuracy": 0.91,                   # in-distribution test accuracy
            "ece": 0.03,                        # expected calibration error (15 bins, MSP)
            "ood": {
                "<score name>": {               # "msp", "energy", "max_logit"
                    "<OOD set name>": {         # e.g. "mnist", "kmnist", "gaussian"
                        "fpr95": 0.42,          # lower is better, in-distribution positive
                        "auroc": 0.91,
                        "aupr_in": 0.90,
                        "aupr_out": 0.89,
                    },
                    ...
                },
                ...
            },
            ...                                 # other keys are carried along untouched
        },
        ...
    }

The per-set dict is :meth:`training.metrics.OodMetrics.as_dict`. The mean over OOD sets is
computed here by :func:`average_over_sets` (and stored under the key ``"average"`` by
:func:`with_averages`); it is never taken as input, so a stale ``"average"`` entry is ignored.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AVERAGE",
    "METRIC_KEYS",
    "METRIC_LABELS",
    "average_over_sets",
    "comparison_table",
    "format_percent",
    "markdown_report",
    "markdown_table",
    "ood_table",
    "to_jsonable",
    "with_averages",
    "write_json_report",
    "write_markdown",
]

#: The per-set OOD metrics, in table order.
METRIC_KEYS: tuple[str, ...] = ("fpr95", "auroc", "aupr_in", "aupr_out")
#: Column titles, with the better direction.
METRIC_LABELS: dict[str, str] = {
    "fpr95": "FPR95 ↓",
    "auroc": "AUROC ↑",
    "aupr_in": "AUPR-In ↑",
    "aupr_out": "AUPR-Out ↑",
}
#: Key under which :func:`with_averages` stores the mean over OOD sets.
AVERAGE = "average"

Results = Mapping[str, Mapping[str, Any]]


# ------------------------------------------------------------------------------- averages


def average_over_sets(per_set: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Unweighted mean of each metric over the OOD sets of one (model, score).

    ``per_set`` is ``{set name: {"fpr95": ..., ...}}``; an ``"average"`` entry is skipped.
    A metric missing from some set is averaged over the sets that have it.
    """
    sets = [m for name, m in per_set.items() if name != AVERAGE]
    if not sets:
        raise ValueError("no OOD sets to average")
    keys = [k for k in METRIC_KEYS if any(k in m for m in sets)]
    keys += [k for m in sets for k in m if k not in keys and k not in METRIC_KEYS]
    keys = list(dict.fromkeys(keys))
    return {k: float(np.mean([float(m[k]) for m in sets if k in m])) for k in keys}


def with_averages(results: Results) -> dict[str, Any]:
    """A deep copy of ``results`` with ``ood[score]["average"]`` (re)computed for every score."""
    out: dict[str, Any] = copy.deepcopy(dict(results))
    for model in out.values():
        for score, per_set in model.get("ood", {}).items():
            model["ood"][score] = {
                **{k: v for k, v in per_set.items() if k != AVERAGE},
                AVERAGE: average_over_sets(per_set),
            }
    return out


# ------------------------------------------------------------------------------- markdown


def format_percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage, ``digits`` decimals: ``0.1234 -> "12.3"``; ``"–"`` if unknown."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{100.0 * float(value):.{digits}f}"


def _cell(text: object) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def markdown_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], align: Sequence[str] | None = None
) -> str:
    """A GitHub-flavoured Markdown table. ``align`` holds ``"l"``/``"r"``/``"c"`` per column.

    Cells are converted with ``str`` (pipes escaped); by default the first column is left- and
    the rest right-aligned. The result ends without a newline.
    """
    rows = [list(r) for r in rows]
    width = len(headers)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row has {len(row)} cells, expected {width}: {row}")
    align = list(align) if align is not None else ["l"] + ["r"] * (width - 1)
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join(rule[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ood_table(
    results: Results, models: Sequence[str] | None = None, scores: Sequence[str] | None = None
) -> str:
    """Per model, per score, per OOD set: FPR95 / AUROC / AUPR-In / AUPR-Out in percent.

    After each (model, score) block comes a bold ``**average**`` row, the mean over its sets.
    ``models`` and ``scores`` select and order what is shown (default: all, in dict order).
    """
    headers = ["Model", "Score", "OOD set", *(METRIC_LABELS[k] for k in METRIC_KEYS)]
    rows: list[list[str]] = []
    for model in models if models is not None else list(results):
        ood = results[model].get("ood", {})
        for score in scores if scores is not None else list(ood):
            if score not in ood:
                continue
            per_set = ood[score]
            for name, metrics in per_set.items():
                if name == AVERAGE:
                    continue
                cells = [format_percent(metrics.get(k)) for k in METRIC_KEYS]
                rows.append([model, score, name, *cells])
            average = average_over_sets(per_set)
            cells = [f"**{format_percent(average.get(k))}**" for k in METRIC_KEYS]
            rows.append([model, score, "**average**", *cells])
    return markdown_table(headers, rows, align=["l", "l", "l"] + ["r"] * len(METRIC_KEYS))


def _scores_in(results: Results) -> list[str]:
    return list(dict.fromkeys(s for r in results.values() for s in r.get("ood", {})))


def comparison_table(results: Results, scores: Sequence[str] | None = None) -> str:
    """One row per model (i.e. per loss): accuracy, ECE, then average FPR95 and AUROC per score.

    Columns: ``Model | Accuracy ↑ | ECE ↓ | <score> FPR95 ↓ | <score> AUROC ↑ | ...``, all in
    percent, averages over OOD sets. Missing entries print as ``–``.
    """
    scores = list(scores) if scores is not None else _scores_in(results)
    headers = ["Model", "Accuracy ↑", "ECE ↓"]
    for score in scores:
        headers += [f"{score} FPR95 ↓", f"{score} AUROC ↑"]
    rows = []
    for model, result in results.items():
        row = [model, format_percent(result.get("accuracy")), format_percent(result.get("ece"))]
        for score in scores:
            per_set = result.get("ood", {}).get(score)
            average = average_over_sets(per_set) if per_set else {}
            row += [format_percent(average.get("fpr95")), format_percent(average.get("auroc"))]
        rows.append(row)
    return markdown_table(headers, rows)


def markdown_report(
    results: Results,
    title: str = "OOD evaluation",
    plots: Mapping[str, str | os.PathLike[str]] | None = None,
    notes: str | None = None,
) -> str:
    """A whole Markdown report: comparison table, per-set table, then the plots as images.

    ``plots`` maps a caption to an image path (written as given, so pass paths relative to
    where the report will live).
    """
    parts = [
        f"# {title}",
        "All numbers are percentages. FPR95 is the fraction of OOD inputs accepted when 95% of "
        "in-distribution inputs are accepted (in-distribution positive, as in the LogitNorm "
        "paper); averages are unweighted means over the OOD sets.",
    ]
    if notes:
        parts.append(notes)
    parts += ["## Comparison (averages over OOD sets)", comparison_table(results)]
    parts += ["## Per OOD set", ood_table(results)]
    if plots:
        parts.append("## Plots")
        parts += [f"![{caption}]({Path(p).as_posix()})" for caption, p in plots.items()]
    return "\n\n".join(parts) + "\n"


# ------------------------------------------------------------------------------- files


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: numpy scalars and arrays, tuples, dataclasses, enums and
    paths converted; mapping keys turned into strings; NaN and infinities become ``None``."""
    if isinstance(value, Enum):
        value = value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        as_dict = getattr(value, "as_dict", None)
        return to_jsonable(as_dict() if callable(as_dict) else dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")


def _write_atomically(text: str, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_json_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``report`` as indented, strict JSON (no NaN) via :func:`to_jsonable`; returns the path.

    Written to a temporary file and renamed, so a reader never sees half a report.
    """
    text = json.dumps(to_jsonable(report), indent=2, allow_nan=False, ensure_ascii=False)
    return _write_atomically(text + "\n", path)


def write_markdown(text: str, path: str | os.PathLike[str]) -> Path:
    """Write a Markdown report (e.g. from :func:`markdown_report`); returns the path."""
    return _write_atomically(text if text.endswith("\n") else text + "\n", path)
