"""Run the monitoring stack (Prometheus, Alertmanager, example webhook receiver) without Docker.

The configuration is *derived* from the shipped files, never copied: ``deploy/prometheus/
prometheus.yml``, ``deploy/prometheus/rules/*.yml`` and ``deploy/alertmanager/alertmanager.yml``
are loaded and only the addresses (and, with ``--fast``, the intervals and ``for:`` durations)
are rewritten. The live end-to-end test (tests/deploy/test_live_stack.py) uses this module, so
what it tests is what the compose stack runs.

Needs the ``prometheus`` and ``alertmanager`` binaries (Debian: ``apt-get install prometheus
prometheus-alertmanager``). Everything listens on 127.0.0.1.

    # a service is already running on 127.0.0.1:8000
    python scripts/monitoring_stack.py --target 127.0.0.1:8000
    python scripts/monitoring_stack.py --target 127.0.0.1:8000 --fast   # 1s intervals, short for:
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES_DIR = DEPLOY / "prometheus" / "rules"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
WEBHOOK_RECEIVER = DEPLOY / "webhook_receiver.py"

#: The scrape job the alert rules match on (``up{job="ood-service"}``).
SERVICE_JOB = "ood-service"

_DURATION_RE = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000,
}  # fmt: skip


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``90s``, ``10m`` or ``1h30m``."""
    text = str(text).strip()
    parts = _DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """A Prometheus duration for a whole number of seconds (or milliseconds below 1 s)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{round(seconds)}s"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- configuration derived from the shipped files -----------------------------------------------


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def shipped_rule_files() -> list[Path]:
    """The rule files Prometheus loads, in the order of the shipped ``rule_files`` globs."""
    config = load_yaml(PROMETHEUS_CONFIG)
    files: list[Path] = []
    for pattern in config.get("rule_files", []):
        files.extend(sorted(PROMETHEUS_CONFIG.parent.glob(pattern)))
    return files


def derive_rules(doc: dict[str, Any], max_for: float | None = None) -> dict[str, Any]:
    """A copy of a rule file with every ``for:`` cut to at most ``max_for`` seconds.

    Expressions, labels, annotations and groups are kept as shipped; a group ``interval`` is
    dropped when ``max_for`` is given so that the global (short) evaluation interval applies.
    """
    doc = copy.deepcopy(doc)
    if max_for is None:
        return doc
    for group in doc.get("groups", []):
        group.pop("interval", None)
        for rule in group.get("rules", []):
            if "alert" in rule and "for" in rule:
                rule["for"] = format_duration(min(parse_duration(rule["for"]), max_for))
    return doc


def derive_prometheus_config(
    *,
    service_targets: list[str],
    alertmanager: str,
    self_target: str,
    rule_files: list[Path],
    scrape_interval: float | None = None,
    evaluation_interval: float | None = None,
) -> dict[str, Any]:
    """The shipped prometheus.yml pointed at local addresses (and optionally faster)."""
    config = copy.deepcopy(load_yaml(PROMETHEUS_CONFIG))
    glob = config.setdefault("global", {})
    if scrape_interval is not None:
        glob["scrape_interval"] = format_duration(scrape_interval)
        glob["scrape_timeout"] = format_duration(scrape_interval)
    if evaluation_interval is not None:
        glob["evaluation_interval"] = format_duration(evaluation_interval)
    config["rule_files"] = [str(p) for p in rule_files]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    if SERVICE_JOB not in jobs:
        raise ValueError(f"{PROMETHEUS_CONFIG} has no scrape job named {SERVICE_JOB!r}")
    jobs[SERVICE_JOB]["static_configs"] = [{"targets": list(service_targets)}]
    if "prometheus" in jobs:
        jobs["prometheus"]["static_configs"] = [{"targets": [self_target]}]
    return config


def derive_alertmanager_config(
    *,
    webhook_url: str,
    group_wait: float | None = None,
    group_interval: float | None = None,
    repeat_interval: float | None = None,
) -> dict[str, Any]:
    """The shipped alertmanager.yml with every webhook pointed at ``webhook_url``."""
    config = copy.deepcopy(load_yaml(ALERTMANAGER_CONFIG))
    found = False
    for receiver in config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
            found = True
    if not found:
        raise ValueError(f"{ALERTMANAGER_CONFIG} has no webhook receiver to point at the example")
    for key, value in (
        ("group_wait", group_wait),
        ("group_interval", group_interval),
        ("repeat_interval", repeat_interval),
    ):
        if value is not None:
            config["route"][key] = format_duration(value)
            for sub in config["route"].get("routes", []):
                if key in sub:
                    sub[key] = format_duration(value)
    return config


# ---- processes ----------------------------------------------------------------------------------


def http_get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_http_ok(url: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 2xx; raise if ``proc`` exits or the deadline passes."""
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer in time")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: never leaves the process behind."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class MonitoringStack:
    """Prometheus + Alertmanager + webhook receiver on 127.0.0.1, configured from deploy/.

    ``fast=True`` is for tests and demos: 1 s scrape and evaluation intervals, every alert's
    ``for:`` cut to ``max_for`` seconds and Alertmanager grouping waits of a second.
    """

    service_targets: list[str]
    workdir: Path
    fast: bool = False
    max_for: float = 5.0
    prometheus_bin: str = "prometheus"
    alertmanager_bin: str = "prometheus-alertmanager"
    prometheus_port: int = 0
    alertmanager_port: int = 0
    webhook_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}"

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def write_configs(self) -> tuple[Path, Path]:
        """Write the derived rule files and configs into ``workdir``; return the two configs."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("prometheus_port", "alertmanager_port", "webhook_port"):
            if not getattr(self, name):
                setattr(self, name, free_port())
        rules_dir = self.workdir / "rules"
        rules_dir.mkdir(exist_ok=True)
        rule_paths = []
        for src in shipped_rule_files():
            dst = rules_dir / src.name
            doc = derive_rules(load_yaml(src), self.max_for if self.fast else None)
            dst.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
            rule_paths.append(dst)
        interval = 1.0 if self.fast else None
        prom = derive_prometheus_config(
            service_targets=self.service_targets,
            alertmanager=f"127.0.0.1:{self.alertmanager_port}",
            self_target=f"127.0.0.1:{self.prometheus_port}",
            rule_files=rule_paths,
            scrape_interval=interval,
            evaluation_interval=interval,
        )
        am = derive_alertmanager_config(
            webhook_url=f"{self.webhook_url}/alerts",
            group_wait=1.0 if self.fast else None,
            group_interval=2.0 if self.fast else None,
            repeat_interval=None,
        )
        prom_path = self.workdir / "prometheus.yml"
        am_path = self.workdir / "alertmanager.yml"
        prom_path.write_text(yaml.safe_dump(prom, sort_keys=False), encoding="utf-8")
        am_path.write_text(yaml.safe_dump(am, sort_keys=False), encoding="utf-8")
        return prom_path, am_path

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.log_path(name), "wb")  # noqa: SIM115 - closed when the process is reaped
        try:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )  # fmt: skip
        finally:
            log.close()  # the child holds its own descriptor
        self.processes[name] = proc
        return proc

    def start(self, timeout: float = 30.0) -> None:
        """Start the receiver, Alertmanager and Prometheus; return once all three answer."""
        prom_path, am_path = self.write_configs()
        deadline = time.monotonic() + timeout
        webhook = self._spawn(
            "webhook",
            [sys.executable, str(WEBHOOK_RECEIVER), "--host", "127.0.0.1",
             "--port", str(self.webhook_port), "--log-file", str(self.workdir / "alerts.jsonl")],
        )  # fmt: skip
        am = self._spawn(
            "alertmanager",
            [self.alertmanager_bin, f"--config.file={am_path}",
             f"--storage.path={self.workdir / 'alertmanager-data'}",
             f"--web.listen-address=127.0.0.1:{self.alertmanager_port}",
             f"--web.external-url={self.alertmanager_url}",
             "--cluster.listen-address=",  # no gossip port: a single local instance
             "--log.level=info"],
        )  # fmt: skip
        prom = self._spawn(
            "prometheus",
            [self.prometheus_bin, f"--config.file={prom_path}",
             f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
             f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
             f"--web.external-url={self.prometheus_url}",
             "--storage.tsdb.retention.time=1d", "--log.level=info"],
        )  # fmt: skip
        wait_http_ok(f"{self.webhook_url}/healthz", deadline, webhook)
        wait_http_ok(f"{self.alertmanager_url}/-/ready", deadline, am)
        wait_http_ok(f"{self.prometheus_url}/-/ready", deadline, prom)

    def stop(self) -> None:
        # Prometheus first (it would otherwise keep sending to a stopped Alertmanager).
        for name in ("prometheus", "alertmanager", "webhook"):
            proc = self.processes.get(name)
            if proc is not None:
                stop_process(proc)

    def logs(self) -> str:
        """Every log, concatenated, for a failure message."""
        out = []
        for name in ("prometheus", "alertmanager", "webhook"):
            path = self.log_path(name)
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace")
                out.append(f"===== {name} ({path}) =====\n{text[-20000:]}")
        return "\n".join(out)

    # ---- HTTP API helpers -----------------------------------------------------------------------

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts from Prometheus' /api/v1/alerts."""
        return http_get_json(f"{self.prometheus_url}/api/v1/alerts")["data"]["alerts"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; returns the result vector."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = http_get_json(url)
        if body.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {body}")
        return body["data"]["result"]

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds (/api/v2/alerts), active, silenced and inhibited."""
        return http_get_json(f"{self.alertmanager_url}/api/v2/alerts")

    def webhook_notifications(self) -> list[dict[str, Any]]:
        return http_get_json(f"{self.webhook_url}/alerts")["notifications"]


@contextlib.contextmanager
def running_stack(
    service_targets: list[str], workdir: Path | None = None, **kwargs: Any
) -> Iterator[MonitoringStack]:
    """Start a :class:`MonitoringStack` and always stop it."""
    owned = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="ood-monitoring-")) if owned else workdir
    assert directory is not None
    stack = MonitoringStack(service_targets=service_targets, workdir=directory, **kwargs)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        if owned and not os.environ.get("OOD_KEEP_STACK_DIR"):
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Prometheus + Alertmanager locally.")
    parser.add_argument(
        "--target", action="append", default=None,
        help="host:port of a service replica to scrape (repeatable; default 127.0.0.1:8000)",
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None, help="configs, data and logs")
    parser.add_argument("--fast", action="store_true", help="1s intervals and short for:")
    parser.add_argument("--prometheus-port", type=int, default=9090)
    parser.add_argument("--alertmanager-port", type=int, default=9093)
    parser.add_argument("--webhook-port", type=int, default=9095)
    parser.add_argument("--prometheus-bin", default=shutil.which("prometheus") or "prometheus")
    parser.add_argument(
        "--alertmanager-bin",
        default=shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        or "alertmanager",
    )  # fmt: skip
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ood-monitoring-"))
    stack = MonitoringStack(
        service_targets=args.target or ["127.0.0.1:8000"],
        workdir=workdir,
        fast=args.fast,
        prometheus_bin=args.prometheus_bin,
        alertmanager_bin=args.alertmanager_bin,
        prometheus_port=args.prometheus_port,
        alertmanager_port=args.alertmanager_port,
        webhook_port=args.webhook_port,
    )
    stopping = False

    def _stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        stack.start()
        print(f"Prometheus:   {stack.prometheus_url}  (alerts: {stack.prometheus_url}/alerts)")
        print(f"Alertmanager: {stack.alertmanager_url}")
        print(f"Webhook log:  {workdir / 'alerts.jsonl'}")
        print(f"Configs, data and logs in {workdir}. Ctrl-C stops everything.", flush=True)
        while not stopping:
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}", file=sys.stderr)
                    print(stack.logs(), file=sys.stderr)
                    return 1
            time.sleep(0.5)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
