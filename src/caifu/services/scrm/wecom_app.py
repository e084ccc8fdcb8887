"""A tenant's WeCom app: its configuration and an API client for it.

    caifu wecom configure -t demo --corp-id ww… --agent-id 1000002 --token … --aes-key … --secret …

The callback endpoint reads the configuration on every request, so it is cached for a few
seconds per process (a changed key takes effect within ``CACHE_SECONDS``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from caifu.adapters.sor.repos import scrm as repo
from caifu.adapters.wecom import RateLimiter, TokenCache, WeComClient
from caifu.core.errors import ConfigError
from caifu.scrm.crypto import WeComCrypto, aes_key
from caifu.services.compliance import audit
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant

CACHE_SECONDS = 5.0
DEFAULT_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"


@dataclass(frozen=True)
class WeComApp:
    tenant_id: str
    corp_id: str
    agent_id: str
    token: str
    encoding_aes_key: str
    secret: str
    api_base_url: str | None

    def crypto(self) -> WeComCrypto:
        return WeComCrypto(self.token, self.encoding_aes_key, self.corp_id)


# the apps read from the SoR, per container (``wecom_shared["apps"]``): a module-level cache
# keyed by ``id(container)`` handed a later container a closed one's app when the id was reused
_cache_lock = threading.Lock()


def _apps(container: Container) -> dict[str, tuple[float, WeComApp | None]]:
    apps: dict[str, tuple[float, WeComApp | None]] = container.wecom_shared.setdefault("apps", {})
    return apps


def configure(container: Container, tenant: str, *, corp_id: str, agent_id: str, token: str,
              encoding_aes_key: str, secret: str, api_base_url: str | None = None,
              actor: str = "cli") -> WeComApp:
    """Store (or replace) the tenant's WeCom app, after checking each field."""
    get_tenant(container, tenant)
    problems = []
    if not corp_id or len(corp_id) > 64:
        problems.append("corp_id: 1-64 characters")
    if not token or len(token) > 32 or not token.isascii() or not token.isalnum():
        problems.append("token: 1-32 ASCII letters or digits")
    try:
        aes_key(encoding_aes_key)
    except ValueError as e:
        problems.append(f"encoding_aes_key: {e}")
    if not secret:
        problems.append("secret: required")
    if api_base_url is not None and not api_base_url.startswith(("http://", "https://")):
        problems.append("api_base_url: an http(s) URL")
    if problems:
        raise ConfigError("WeCom app not saved: " + "; ".join(problems))
    app = WeComApp(tenant, corp_id, str(agent_id), token, encoding_aes_key, secret, api_base_url)
    now = container.clock.now()
    with container.engine.begin() as conn:
        repo.replace_app(conn, tenant, corp_id=corp_id, agent_id=app.agent_id, token=token,
                         encoding_aes_key=encoding_aes_key, secret=secret,
                         api_base_url=api_base_url, updated_at=now)
    audit.append(container, tenant, actor, "configure", fields=["wecom_apps"],
                 reason="WeCom app configured")
    with _cache_lock:
        _apps(container).pop(tenant, None)
    return app


def get_app(container: Container, tenant: str) -> WeComApp | None:
    """The tenant's app, or None when it has none (cached briefly, per container)."""
    now = time.monotonic()
    with _cache_lock:
        hit = _apps(container).get(tenant)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    with container.engine.connect() as conn:
        row = repo.app(conn, tenant)
    app = None if row is None else WeComApp(
        row.tenant_id, row.corp_id, row.agent_id, row.token, row.encoding_aes_key, row.secret,
        row.api_base_url)
    with _cache_lock:
        _apps(container)[tenant] = (now, app)
    return app


def client_for(container: Container, tenant: str) -> WeComClient:
    """A WeCom API client for the tenant's app (``container.wecom_transport`` if set).

    The container holds one token cache (keys are per corp and secret) and one rate limiter
    per corp for the process: WeCom counts calls and throttles gettoken per corp, not per
    client object."""
    app = get_app(container, tenant)
    if app is None:
        raise ConfigError(f"tenant {tenant!r} has no WeCom app: caifu wecom configure -t {tenant}")
    shared = container.wecom_shared
    with _cache_lock:
        tokens = shared.setdefault("tokens", TokenCache(clock=time.monotonic))
        limiter = shared.setdefault(f"limiter:{app.corp_id}",
                                    RateLimiter(clock=time.monotonic, sleep=time.sleep))
    return WeComClient(app.corp_id, app.secret, transport=container.wecom_transport,
                       base_url=app.api_base_url or DEFAULT_API_BASE, token_cache=tokens,
                       limiter=limiter, agent_id=app.agent_id)
