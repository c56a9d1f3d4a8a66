"""``python -m service`` (console script ``ood-service``): run one worker process with uvicorn.

Flags override ``OOD_*`` environment variables, which override the YAML file named by
``--config`` / ``OOD_CONFIG_FILE``. Exit status: 0 after a clean shutdown (SIGTERM included, see
:mod:`service.lifecycle`), 2 for invalid settings, 3 (uvicorn's start-up failure) when a model
cannot be loaded.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError
from uvicorn.main import STARTUP_FAILURE

from service.http_protocol import protocol_with_header_timeout
from service.lifecycle import GracefulServer
from service.main import create_app
from service.settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ood-service", description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument("--model-dir", type=Path, help="directory holding <name>/<version>/")
    parser.add_argument("--default-model", help="model served by POST /predict")
    parser.add_argument("--config", type=Path, dest="config_file", help="YAML settings file")
    parser.add_argument("--log-level", help="debug, info, warning, error")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    try:
        settings = Settings(**overrides)
    except (ValidationError, FileNotFoundError) as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        lifespan="on",
        workers=1,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        server_header=False,
        http=protocol_with_header_timeout(settings.header_timeout_s),
    )
    server = GracefulServer(
        config,
        app.state.ood,
        shutdown_delay_s=settings.shutdown_delay_s,
        graceful_shutdown_s=settings.graceful_shutdown_s,
    )
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


if __name__ == "__main__":
    main()
