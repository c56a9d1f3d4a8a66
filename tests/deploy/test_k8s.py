"""Kubernetes example manifests: probes, hardening, the PrometheusRule in sync with the rules."""

from __future__ import annotations

import yaml

from tests.deploy.conftest import DEPLOY, RULES_DIR, load_script

K8S = DEPLOY / "k8s"


def _container() -> dict:
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_prometheusrule_is_rendered_from_the_rule_files() -> None:
    """One source of truth: deploy/prometheus/rules (fix: python scripts/render_k8s_rules.py)."""
    render = load_script("render_k8s_rules")
    assert (K8S / "prometheusrule.yaml").read_text() == render.render(), (
        "deploy/k8s/prometheusrule.yaml is stale: run python scripts/render_k8s_rules.py"
    )


def test_prometheusrule_carries_every_group_verbatim() -> None:
    rule = yaml.safe_load((K8S / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    shipped = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        shipped.extend(yaml.safe_load(path.read_text())["groups"])
    assert rule["spec"]["groups"] == shipped


def test_probes() -> None:
    container = _container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names


def test_pod_is_hardened_and_drains() -> None:
    deployment = yaml.safe_load((K8S / "deployment.yaml").read_text())
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    sc = _container()["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    env = {e["name"]: e["value"] for e in _container()["env"]}
    drain = float(env["OOD_GRACEFUL_SHUTDOWN_S"])
    pre_stop = float(_container()["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] > drain + pre_stop
    assert _container()["resources"]["limits"]["memory"]


def test_service_name_is_the_scrape_job_the_rules_match() -> None:
    service = yaml.safe_load((K8S / "service.yaml").read_text())
    assert service["metadata"]["name"] == "ood-service"
    monitor = yaml.safe_load((K8S / "servicemonitor.yaml").read_text())
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )
