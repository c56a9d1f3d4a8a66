"""scripts/monitoring_stack.py derives its configs from the shipped files, changing only addresses,
intervals and `for:` durations (the live test and local runs rely on that)."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, RULES_DIR, load_script

stack = load_script("monitoring_stack")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("1h30m", 5400), ("500ms", 0.5)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert stack.parse_duration(text) == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        stack.parse_duration("10 minutes")


def test_derived_rules_only_shorten_for(tmp_path: Path) -> None:
    ms = stack.MonitoringStack(service_targets=["127.0.0.1:1"], workdir=tmp_path, fast=True,
                               max_for=5)  # fmt: skip
    prom_path, am_path = ms.write_configs()
    for src in sorted(RULES_DIR.glob("*.yml")):
        shipped = yaml.safe_load(src.read_text())
        derived = yaml.safe_load((tmp_path / "rules" / src.name).read_text())
        for g_src, g_der in zip(shipped["groups"], derived["groups"], strict=True):
            for r_src, r_der in zip(g_src["rules"], g_der["rules"], strict=True):
                if "for" in r_src:
                    assert stack.parse_duration(r_der["for"]) == min(
                        5, stack.parse_duration(r_src["for"])
                    )
                assert {k: v for k, v in r_src.items() if k != "for"} == {
                    k: v for k, v in r_der.items() if k != "for"
                }
    prom = yaml.safe_load(prom_path.read_text())
    assert prom["global"]["evaluation_interval"] == "1s"
    assert prom["rule_files"] == [str(tmp_path / "rules" / p.name)
                                  for p in sorted(RULES_DIR.glob("*.yml"))]  # fmt: skip
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["ood-service"]["static_configs"] == [{"targets": ["127.0.0.1:1"]}]
    assert jobs["ood-service"]["metrics_path"] == "/metrics"
    am = yaml.safe_load(am_path.read_text())
    shipped_am = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    assert am["inhibit_rules"] == shipped_am["inhibit_rules"]
    assert am["receivers"][0]["webhook_configs"][0]["url"] == f"{ms.webhook_url}/alerts"
    assert am["route"]["group_by"] == shipped_am["route"]["group_by"]


def test_slow_mode_keeps_the_shipped_for(tmp_path: Path) -> None:
    ms = stack.MonitoringStack(service_targets=["127.0.0.1:1"], workdir=tmp_path)
    ms.write_configs()
    for src in RULES_DIR.glob("*.yml"):
        assert yaml.safe_load(src.read_text()) == yaml.safe_load(
            (tmp_path / "rules" / src.name).read_text()
        )


def test_webhook_receiver_logs_and_keeps_notifications(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "webhook_receiver", DEPLOY / "webhook_receiver.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    log = tmp_path / "alerts.jsonl"
    server = module.ReceiverServer(("127.0.0.1", 0), log_file=str(log))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        payload = {"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "OODRateHigh", "model": "m"},
             "annotations": {"summary": "s", "action": "a"}, "startsAt": "2024-01-01T00:00:00Z"}
        ]}  # fmt: skip
        request = urllib.request.Request(
            f"{url}/alerts", data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read()) == {"received": 1}
        with urllib.request.urlopen(f"{url}/alerts", timeout=5) as response:
            assert json.loads(response.read())["notifications"] == [payload]
        line = json.loads(log.read_text().splitlines()[0])
        assert line["alertname"] == "OODRateHigh" and line["action"] == "a"
        bad = urllib.request.Request(f"{url}/alerts", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=5)
        assert err.value.code == 400
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
