"""The HTTP service."""

from __future__ import annotations

from typing import Annotated

import typer

from caifu.cli.common import WorkspaceOpt, _fail, _settings, app, console
from caifu.core.errors import CaifuError


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port")] = 8000,
          workspace: WorkspaceOpt = None) -> None:
    """Run the API (needs CAIFU_SECRET_KEY); OpenAPI at /docs, health at /healthz and /readyz."""
    import uvicorn

    from caifu.api import create_app
    from caifu.api.logs import configure

    settings = _settings(workspace)
    try:
        api = create_app(settings)
    except CaifuError as exc:
        _fail(exc)
    configure()
    console.print(f"caifu API on http://{host}:{port} — workspace {settings.workspace}")
    uvicorn.run(api, host=host, port=port, log_config=None, access_log=False)
