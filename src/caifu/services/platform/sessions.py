"""Console sessions: short-lived tokens signed with the service's secret (HMAC-SHA256).

A token reads ``ct_<payload>.<signature>``, both URL-safe base64: the payload is the
principal and its expiry, the signature covers it. Nothing is stored server-side, so any
process of the service can check a token; a user deactivated since is refused at login, and
a token ends by expiry (``Settings.session_minutes``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

from caifu.core.identity import Principal


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: str, p: Principal, minutes: int, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    body = {"sub": p.subject, "tid": p.tenant_id, "role": p.role, "bid": p.branch_id,
            "aid": p.advisor_id, "exp": int((now + dt.timedelta(minutes=minutes)).timestamp())}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    return f"ct_{payload}.{sig}"


def read(secret: str, token: str, now: dt.datetime | None = None) -> Principal | None:
    if not token.startswith("ct_") or token.count(".") != 1:
        return None
    payload, sig = token[3:].split(".")
    want = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, want):
        return None
    try:
        body = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        return None
    now = now or dt.datetime.now(dt.UTC)
    if not isinstance(body, dict) or int(body.get("exp", 0)) <= now.timestamp():
        return None
    return Principal(body["tid"], body["sub"], body["role"], body["bid"], body["aid"])
