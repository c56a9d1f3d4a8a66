"""Framework floors for the serving benchmark: apps that read the body and answer a constant.

``raw``: a bare ASGI callable under uvicorn (uvloop + httptools), the cost of HTTP alone.
``fastapi``: one FastAPI route that reads the body as bytes, the cost FastAPI adds per request.
No parsing, no model. Served with ``python -m uvicorn benchmarks.floor_app:raw`` (or ``:fastapi``)
exactly like the service (one process, log level warning), they bound from above what any
handler in that framework can reach on this machine.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

ANSWER = b'{"predictions":[]}'


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


fastapi = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@fastapi.post("/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


@fastapi.get("/readyz")
async def ready() -> Response:
    return Response(b"{}", media_type="application/json")
