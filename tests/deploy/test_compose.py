"""docker-compose.yml: valid for a real compose implementation, and hardened as documented."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.deploy.conftest import REPO

BASE = REPO / "docker-compose.yml"
GPU = REPO / "docker-compose.gpu.yml"
MONITORING = ("prometheus", "alertmanager", "grafana")


def _compose() -> list[str]:
    """A compose CLI that can render configs without an engine: docker-compose v1 or v2."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    pytest.skip("no compose implementation installed (Debian: apt-get install docker-compose)")


def _config(*files: str) -> dict:
    args = [arg for f in files for arg in ("-f", f)]
    result = subprocess.run(
        [*_compose(), *args, "config"], capture_output=True, text=True, timeout=60, cwd=REPO,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin"},  # no OOD_* overrides from the caller
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _port(port: str | dict) -> tuple[str, int]:
    """(host ip, container port) from the short or long syntax (compose v1 and v2 print both)."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), int(port["target"])
    parts = str(port).split("/")[0].split(":")
    return (parts[0] if len(parts) == 3 else ""), int(parts[-1])


def _volume(volume: str | dict) -> dict:
    """{source, target, read_only} from the short or long volume syntax."""
    if isinstance(volume, dict):
        return {"source": volume.get("source", ""), "target": volume["target"],
                "read_only": bool(volume.get("read_only"))}  # fmt: skip
    source, target, *mode = str(volume).split(":")
    return {"source": source, "target": target, "read_only": "ro" in mode}


@pytest.mark.parametrize("files", [("docker-compose.yml",),
                                   ("docker-compose.yml", "docker-compose.gpu.yml")])  # fmt: skip
def test_compose_config_is_valid(files: tuple[str, ...]) -> None:
    args = [arg for f in files for arg in ("-f", f)]
    result = subprocess.run(
        [*_compose(), *args, "config", "-q"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 0, result.stderr


def test_service_is_hardened() -> None:
    svc = _config("docker-compose.yml")["services"]["ood-service"]
    assert svc["read_only"] is True
    assert svc["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in svc["security_opt"]
    assert any(str(t).startswith("/tmp") for t in svc["tmpfs"])
    uid = str(svc["user"]).split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert svc["mem_limit"] and svc["pids_limit"]
    assert svc["build"]["target"] == "cpu"
    # Exec form: no shell wrapper in front of the server (the image's ENTRYPOINT is exec form).
    assert "command" not in svc and "entrypoint" not in svc
    health = svc["healthcheck"]["test"]
    assert health[0] == "CMD" and any("/readyz" in part for part in health)


def test_models_mounted_read_only() -> None:
    svc = _config("docker-compose.yml")["services"]["ood-service"]
    models = [_volume(v) for v in svc["volumes"] if _volume(v)["target"] == "/app/models"]
    assert len(models) == 1 and models[0]["read_only"] is True
    assert svc["environment"]["OOD_MODEL_DIR"] == "/app/models"


def test_stop_grace_period_outlasts_the_drain() -> None:
    svc = _config("docker-compose.yml")["services"]["ood-service"]
    drain = float(svc["environment"]["OOD_GRACEFUL_SHUTDOWN_S"])
    grace = svc["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) > drain + 5


def test_only_the_api_port_is_published_on_all_interfaces() -> None:
    services = _config("docker-compose.yml")["services"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            host_ip, target = _port(port)
            if name == "ood-service":
                assert target == 8000
            else:
                assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"
    for name in MONITORING:
        assert services[name].get("ports"), f"{name} is not reachable from the host"
    assert "ports" not in services["webhook-receiver"]


def test_monitoring_stack_loads_the_shipped_files() -> None:
    services = _config("docker-compose.yml")["services"]
    prom = services["prometheus"]
    volumes = [_volume(v) for v in prom["volumes"]]
    assert any(v["source"].endswith("deploy/prometheus") and v["target"] == "/etc/prometheus"
               and v["read_only"] for v in volumes)  # fmt: skip
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    am = services["alertmanager"]
    assert any(_volume(v)["source"].endswith("deploy/alertmanager") for v in am["volumes"])
    graf = services["grafana"]
    targets = {_volume(v)["target"] for v in graf["volumes"]}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"} <= targets
    # The names the configs use to reach each other are the compose service names.
    prom_cfg = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom_cfg["scrape_configs"]}
    assert jobs["ood-service"]["static_configs"][0]["targets"] == ["ood-service:8000"]
    am_cfg = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    urls = [h["url"] for r in am_cfg["receivers"] for h in r.get("webhook_configs", [])]
    assert urls == ["http://webhook-receiver:9095/alerts"]
    for name, svc in services.items():
        assert svc.get("read_only") is True, name
        assert svc.get("cap_drop") == ["ALL"], name


def test_gpu_override_reserves_a_gpu_and_builds_the_gpu_target() -> None:
    svc = _config("docker-compose.yml", "docker-compose.gpu.yml")["services"]["ood-service"]
    devices = svc["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"
    assert svc["build"]["target"] == "gpu"
    assert "CUDAExecutionProvider" in svc["environment"]["OOD_PROVIDERS"]
    # The override keeps the hardening of the base file.
    assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]


def test_compose_file_parses_as_plain_yaml() -> None:
    """Anchors resolve and every service has resource limits."""
    doc = yaml.safe_load(BASE.read_text())
    for name, svc in doc["services"].items():
        assert svc.get("mem_limit") and svc.get("pids_limit"), name
    assert yaml.safe_load(GPU.read_text())["services"]["ood-service"]["deploy"]
