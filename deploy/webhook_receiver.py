"""A tiny Alertmanager webhook receiver that logs what it gets: an example to replace.

Alertmanager POSTs a JSON document (version "4") to the configured URL for every notification:
``{"status": "firing"|"resolved", "alerts": [{"labels": ..., "annotations": ..., ...}], ...}``
(https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). This receiver writes
one JSON line per alert to stdout (and to ``--log-file`` when given), answers 200, and keeps the
last notifications in memory so that ``GET /alerts`` can show them (used by the live test).

Standard library only, so it runs in any Python 3.11 image:

    python deploy/webhook_receiver.py --host 0.0.0.0 --port 9095

Replace it with a real notifier (PagerDuty, Slack, Opsgenie, e-mail) in alertmanager.yml.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 1 << 20
KEEP_NOTIFICATIONS = 100


class _Handler(BaseHTTPRequestHandler):
    server: ReceiverServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY_BYTES:
            self._answer(413 if length > MAX_BODY_BYTES else 400, {"error": "bad body length"})
            return
        try:
            payload = json.loads(self.rfile.read(length))
            alerts = payload["alerts"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "not an Alertmanager webhook payload"})
            return
        self.server.record(payload)
        for alert in alerts:
            line = {
                "status": alert.get("status"),
                "alertname": alert.get("labels", {}).get("alertname"),
                "labels": alert.get("labels", {}),
                "summary": alert.get("annotations", {}).get("summary"),
                "action": alert.get("annotations", {}).get("action"),
                "startsAt": alert.get("startsAt"),
            }
            self.server.log(json.dumps(line, sort_keys=True))
        self._answer(200, {"received": len(alerts)})

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(200, {"status": "ok"})
        elif self.path == "/alerts":
            self._answer(200, {"notifications": self.server.snapshot()})
        else:
            self._answer(404, {"error": "not found"})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log; alerts are logged as JSON lines instead."""


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], log_file: str | None = None) -> None:
        super().__init__(address, _Handler)
        self._lock = threading.Lock()
        self._notifications: deque[dict[str, Any]] = deque(maxlen=KEEP_NOTIFICATIONS)
        self._log_file = log_file

    def record(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self._notifications.append(payload)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._notifications)

    def log(self, line: str) -> None:
        print(line, flush=True)
        if self._log_file:
            with self._lock, open(self._log_file, "a", encoding="utf-8") as f:
                f.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--log-file", default=None, help="also append one JSON line per alert")
    args = parser.parse_args(argv)

    server = ReceiverServer((args.host, args.port), log_file=args.log_file)
    # SIGTERM (docker stop) ends serve_forever from another thread, so shutdown is clean.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"webhook receiver listening on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
