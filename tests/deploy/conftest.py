"""Shared helpers for the deployment tests: paths, the metric contract, scripts loaded by path."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
CONTRACTS = REPO / "docs" / "contracts.md"
DEPLOYMENT_DOC = REPO / "docs" / "deployment.md"

#: Series Prometheus itself makes, allowed in expressions besides the service's metrics.
BUILTIN_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py (scripts/ is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def contract_metrics() -> dict[str, str]:
    """Metric name -> type, read from the table in docs/contracts.md."""
    rows = re.findall(r"^\| `(ood_[a-z0-9_]+)` \| ([a-z]+)", CONTRACTS.read_text(), re.MULTILINE)
    assert rows, "no metric table found in docs/contracts.md"
    return dict(rows)


def exposed_series_names() -> set[str]:
    """Every series name the contract's metrics expose (histograms: _bucket, _sum, _count)."""
    names: set[str] = set()
    for name, kind in contract_metrics().items():
        names.add(name)
        if kind == "histogram":
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


def recorded_names() -> set[str]:
    """Every series name the shipped recording rules define."""
    import yaml

    names = set()
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(r["record"] for r in group["rules"] if "record" in r)
    return names


_NAME_RE = re.compile(r"(?<![A-Za-z0-9_:\"'.$])(ood[_:][A-Za-z0-9_:]*|up|ALERTS)\b")


def series_names_in(expr: str) -> set[str]:
    """The ood_*/ood:* (and up/ALERTS) names an expression reads, label values excluded."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(_NAME_RE.findall(without_strings))


def is_override_hook(name: str) -> bool:
    """``ood:<level>:override`` series are optional per-model overrides (ood-thresholds.yml)."""
    return name.startswith("ood:") and name.endswith(":override")


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return path
