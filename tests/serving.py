"""Serving the app to a test: in-process by default, over a real socket for the smoke tests.

In-process (Starlette's TestClient) runs the same ASGI app, middleware and lifespan (the job
and event worker threads start and stop with it) without a server, a port and a thread per
test. One test per router is marked ``real_socket`` and goes through uvicorn on a loopback
port, so what only a real server does (HTTP parsing, streaming uploads, headers on the wire)
stays covered; the browser tests always use a real socket.
"""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

with warnings.catch_warnings():
    # Starlette prefers httpx2 for its TestClient; the project pins httpx, which still works
    warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
    from starlette.testclient import TestClient


@contextmanager
def serving_socket(app: FastAPI) -> Iterator[httpx.Client]:
    """The app under uvicorn on a free loopback port, in a thread: real HTTP over a socket."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serving_in_process(app: FastAPI) -> Iterator[httpx.Client]:
    """The app in this process: the lifespan runs on enter and exit, as under a server, and
    an unhandled error is a 500 answer, as a server gives it, not an exception in the test.
    Redirects are not followed, as by the ``httpx.Client`` of ``serving_socket``."""
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False,
                    follow_redirects=False) as client:
        yield client


@contextmanager
def serving(app: FastAPI, real_socket: bool = False) -> Iterator[httpx.Client]:
    with (serving_socket(app) if real_socket else serving_in_process(app)) as client:
        yield client


def wants_socket(request: pytest.FixtureRequest) -> bool:
    """Whether the requesting test is marked ``real_socket`` (for fixtures that serve)."""
    return request.node.get_closest_marker("real_socket") is not None
