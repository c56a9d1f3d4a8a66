"""The shipped Prometheus rules: valid, unit-tested with promtool, and only using known series."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.deploy.conftest import (
    BUILTIN_SERIES,
    DEPLOY,
    DEPLOYMENT_DOC,
    RULES_DIR,
    exposed_series_names,
    is_override_hook,
    recorded_names,
    series_names_in,
)

RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted((DEPLOY / "prometheus" / "tests").glob("*.test.yml"))


def _rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def _alerts() -> list[dict]:
    return [r for r in _rules() if "alert" in r]


def test_promtool_check_rules(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, RULE_FILES)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests(promtool: str) -> None:
    """Synthetic series: every alert fires where it should and stays quiet where it should not."""
    assert TEST_FILES
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, TEST_FILES)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_prometheus_config(promtool: str) -> None:
    """The compose Prometheus config is valid and its rule_files glob finds every rule file."""
    result = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_amtool_check_config() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not installed (Debian: apt-get install prometheus-alertmanager)")
    result = subprocess.run(
        [amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a non-firing test"


def test_expressions_use_only_contract_metrics_and_recorded_series() -> None:
    known = exposed_series_names() | recorded_names() | BUILTIN_SERIES
    for rule in _rules():
        unknown = {
            n for n in series_names_in(rule["expr"]) if n not in known and not is_override_hook(n)
        }
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads unknown {unknown}"


def test_ratios_are_sums_divided_not_averaged() -> None:
    for rule in _rules():
        if rule.get("record", "").startswith("ood:reject_ratio:"):
            expr = rule["expr"]
            assert "avg" not in expr, rule["record"]
            assert expr.count("sum by (model, version)") >= 2, rule["record"]
    windows = {r["record"] for r in _rules() if r.get("record", "").startswith("ood:reject_ratio:")}
    assert windows == {"ood:reject_ratio:rate5m", "ood:reject_ratio:rate1h"}


def test_alerts_say_what_to_do() -> None:
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"', DEPLOYMENT_DOC.read_text()))
    for alert in _alerts():
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}, alert["alert"]
        annotations = alert["annotations"]
        assert {"summary", "description", "action", "runbook"} <= annotations.keys(), alert["alert"]
        anchor = annotations["runbook"].split("#", 1)[1]
        assert anchor in anchors, f"{alert['alert']}: no runbook anchor {anchor} in deployment.md"


def test_ood_alerts_compare_against_the_configurable_levels() -> None:
    """Levels live in ood-thresholds.yml only: no OOD-rate alert hard-codes a number."""
    by_name = {a["alert"]: a["expr"] for a in _alerts()}
    assert "ood:reject_ratio_warning_level" in by_name["OODRateHigh"]
    assert "ood:reject_ratio_critical_level" in by_name["OODRateCritical"]
    assert "ood:reject_ratio_drift_level" in by_name["OODRateDrift"]
    for name in ("OODRateHigh", "OODRateCritical", "OODRateDrift"):
        assert "ood:min_items_per_second" in by_name[name], "minimum-traffic guard missing"
        assert not re.search(r"[<>]=?\s*[0-9.]+", by_name[name]), f"{name} hard-codes a level"


def test_ood_rate_levels_scale_with_the_expected_reject_ratio() -> None:
    """Each OOD-rate level is max(floor, factor x expected) per model and version (issue: a
    service at TPR 0.9 rejects ~10% of clean inputs and must not sit in a permanent drift alert)."""
    records = {r["record"]: r["expr"] for r in _rules() if "record" in r}
    assert "ood_expected_reject_ratio" in records["ood:expected_reject_ratio"]
    by_name = {a["alert"]: a["expr"] for a in _alerts()}
    for kind, alert in (("warning", "OODRateHigh"), ("critical", "OODRateCritical"),
                        ("drift", "OODRateDrift")):  # fmt: skip
        level = records[f"ood:reject_ratio_{kind}_level"]
        for knob in ("ood:expected_reject_ratio", f"_{kind}_factor", f"_{kind}_floor"):
            assert knob in level, f"ood:reject_ratio_{kind}_level does not use {knob}"
        assert f"on (model, version) ood:reject_ratio_{kind}_level" in by_name[alert]
