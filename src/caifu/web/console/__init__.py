"""The operations console: server-rendered pages under ``/console/`` (Jinja2 + htmx, charts by
the vendored Apache ECharts), served by the app of ``caifu serve`` (``docs/console.md``).

    auth     sign-in form, sign-in, sign-out; the principal every page depends on; CSRF
    home     the governed KPIs and a metric's definition, lineage and figures
    data     data dictionary, data quality, ingest log
    assets   the console's CSS/JS and the vendored libraries

Every page but the sign-in form and the static files depends on ``auth.console_principal``
and names its role action (``auth.allowed``); pages read only through services, as the
signed-in caller. The routes are out of the OpenAPI document (``include_in_schema=False``).
"""

from __future__ import annotations

from fastapi import APIRouter

from caifu.web.console import assets, auth, data, home

router = APIRouter(include_in_schema=False)
for _module in (auth, home, data, assets):
    router.include_router(_module.router)
