"""The provisioned Grafana dashboard: valid JSON, only known series, the panels operators need."""

from __future__ import annotations

import json
from collections.abc import Iterator

import yaml

from tests.deploy.conftest import (
    BUILTIN_SERIES,
    DEPLOY,
    contract_metrics,
    exposed_series_names,
    recorded_names,
    series_names_in,
)

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "ood-service.json"


def _panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _exprs(dashboard: dict) -> Iterator[tuple[str, str]]:
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for var in dashboard["templating"]["list"]:
        yield f"variable {var['name']}", var["definition"]
    for annotation in dashboard["annotations"]["list"]:
        yield f"annotation {annotation['name']}", annotation["expr"]


def test_dashboard_uses_only_contract_metrics_and_recorded_series() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exposed_series_names() | recorded_names() | BUILTIN_SERIES
    seen: set[str] = set()
    for title, expr in _exprs(dashboard):
        names = series_names_in(expr)
        assert names, f"{title}: {expr!r} reads no known series"
        assert names <= known, f"{title}: unknown {names - known}"
        seen |= names
    # Every metric of the contract is on the dashboard somewhere.
    for name, kind in contract_metrics().items():
        variants = {name, f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        assert variants & seen, f"{name} ({kind}) is not on the dashboard"


def test_dashboard_covers_what_operators_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(expr for _, expr in _exprs(dashboard))
    for needle in (
        "ood:reject_ratio:rate5m",  # OOD rate per model
        "ood:reject_ratio:rate1h",
        "ood:reject_ratio_warning_level",  # the alert level, drawn on the same panel
        "histogram_quantile(0.95, sum by (le, model, version) (rate(ood_score_msp_bucket",
        "ood_http_request_duration_seconds_bucket",  # latency percentiles
        "ood_batch_size_items_bucket",
        "ood_queue_depth_items",
        "ood_requests_refused_total",
    ):
        assert needle in exprs, needle
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))


def test_datasource_uid_matches_provisioning() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    for panel in _panels(dashboard["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
    providers = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/ood-service.yml").read_text()
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
