"""docs/deployment.md stays true: settings table current, every metric and alert covered."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.conftest import DEPLOYMENT_DOC, RULES_DIR, contract_metrics, load_script


def test_settings_table_is_current() -> None:
    pytest.importorskip("service.settings")
    render = load_script("render_settings_doc")
    text = DEPLOYMENT_DOC.read_text()
    assert render.render(text) == text, "run python scripts/render_settings_doc.py"


def test_every_contract_metric_is_documented() -> None:
    text = DEPLOYMENT_DOC.read_text()
    documented = dict(re.findall(r"^\| `(ood_[a-z0-9_]+)` \| ([a-z]+)", text, re.MULTILINE))
    assert documented == contract_metrics()


def test_every_alert_and_level_is_documented() -> None:
    text = DEPLOYMENT_DOC.read_text()
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                if name.endswith("_level") or "alert" in rule or name.endswith("_slo_seconds"):
                    assert name in text, f"{name} is not in docs/deployment.md"
