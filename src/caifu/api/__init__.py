"""The HTTP service (FastAPI): one process owns the workspace; every route calls one service."""

from caifu.api.app import create_app as create_app

__all__ = ["create_app"]
