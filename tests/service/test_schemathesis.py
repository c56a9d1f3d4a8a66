"""Property-based API testing with schemathesis against the app's own OpenAPI document.

Every operation in ``/openapi.json`` gets a bounded number of generated requests (valid and
invalid, per schemathesis' default generation modes), sent in-process to the ASGI app with its
lifespan running (real ONNX Runtime sessions of the tiny test models). The one property checked
is the one that matters for a service: no request, however odd, gets a 5xx.

Bounded for CI: ``MAX_EXAMPLES`` per operation, derandomized (the same examples every run), no
Hypothesis deadline (a shared 2-core machine), no example database. A 504 is accepted only as
the documented answer to a request that set its own ``timeout``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from service.main import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.service.conftest import DEFAULT  # noqa: E402

#: examples per operation; ``SCHEMATHESIS_EXAMPLES=500`` for a longer hunt by hand
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))


def _settings(model_dir: Path) -> Settings:
    return Settings(
        model_dir=model_dir,
        default_model=DEFAULT,
        providers=["CPUExecutionProvider"],
        intra_op_threads=1,
        max_batch_size=8,
        max_delay_ms=1.0,
        max_items_per_request=8,
        max_body_bytes=1024 * 1024,
        request_timeout_s=5.0,
    )


# The document does not depend on the models (no lifespan runs here), so the schema can be built
# when the module is collected; the app that answers is made by the fixture below. (pytest 9
# cannot run schemathesis' lazy ``from_fixture`` schemas.)
schema = schemathesis.openapi.from_dict(create_app(_settings(Path("unused"))).openapi())


@pytest.fixture(scope="module")
def asgi_client(model_root: Path) -> Iterator[Any]:
    """A client on the app with the session's tiny models, its lifespan running."""
    client = schemathesis.python.asgi.ASGIClient(create_app(_settings(model_root)))
    with client:  # starts the lifespan: models loaded, batchers running
        try:
            yield client
        finally:
            schemathesis.python.asgi.shutdown_lifespans()  # stops the batchers


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any, asgi_client: Any) -> None:
    case.call_and_validate(session=asgi_client, checks=[no_server_error])


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' ``not_a_server_error``, except the documented answer to a request's own
    deadline: a request that sets ``timeout`` (1 ms at the least) may get 504 ``timeout``."""
    body = case.body if isinstance(case.body, dict) else {}
    if response.status_code == 504 and body.get("timeout") is not None:
        assert response.json()["error"]["code"] == "timeout"
        return None
    return not_a_server_error(ctx, response, case)
