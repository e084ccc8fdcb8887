"""The service's logs are JSON lines without personal data, tied to requests and audit."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from caifu.api.logs import FIELDS, JsonFormatter
from caifu.services.compliance import audit
from tests.api.profiles.test_customers import _token


def test_each_request_is_one_json_line_without_personal_data(client, log_lines) -> None:  # type: ignore[no-untyped-def]
    http, c = client
    h = _token(http, "acme.compliance")
    reason = "投诉核查 工单 2026-118"
    r = http.get("/v1/customers/C2", params={"unmask": "true"},
                 headers={**h, "X-Caifu-Reason": quote(reason), "X-Request-ID": "req-abc-12345"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "req-abc-12345"
    assert r.json()["customer"]["mobile"] == "13812345678"
    r2 = http.get("/v1/customers/C9", headers={**h, "X-Request-ID": "bad id;x"})
    assert r2.status_code == 404 and len(r2.headers["X-Request-ID"]) == 32  # ours instead

    text = log_lines.getvalue()
    lines = [json.loads(x) for x in text.splitlines() if x.strip()]
    access = [x for x in lines if x["logger"] == "caifu.access"]
    assert [(x["route"], x["status"]) for x in access][-2:] == [
        ("/v1/customers/{customer_id}", 200), ("/v1/customers/{customer_id}", 404)]
    first = next(x for x in access if x["request_id"] == "req-abc-12345")
    assert (first["tenant"], first["role"], first["actor"], first["method"]) == (
        "acme", "compliance", "acme.compliance", "GET")
    assert all(set(x) <= {"ts", "level", "logger", "msg", *FIELDS} for x in lines)
    for secret in ("C2", "C9", "13812345678", "王二", "EC212345", reason, "unmask"):
        assert secret not in text, secret
    # the audit record of the unmasked read carries the same request id
    (rec,) = [s for s in audit.records(c, "acme") if s.entry.action == "unmask"]
    assert rec.entry.request_id == "req-abc-12345" and rec.entry.reason == reason


def test_an_unknown_extra_field_never_reaches_the_log() -> None:
    rec = logging.LogRecord("caifu.x", logging.INFO, __file__, 1, "done", None, None)
    rec.mobile = "13812345678"
    rec.route = "/v1/tags"
    out = json.loads(JsonFormatter().format(rec))
    assert out["route"] == "/v1/tags" and "13812345678" not in json.dumps(out)


def test_an_error_log_shows_the_innermost_frame_where_it_failed() -> None:
    """Found by an outside probe: the trace kept the 8 outermost frames (the server's and
    Starlette's), so a 500's log never showed the caifu frame that failed."""
    def failing_caifu_frame(secret: str) -> None:
        raise ValueError(f"customer {secret}")

    def nest(depth: int) -> None:
        if depth == 0:
            failing_caifu_frame(mobile)  # a variable: the source line shows its name only
        nest(depth - 1)

    mobile = "138" + "12345678"
    try:
        nest(40)
    except ValueError:
        import sys
        rec = logging.LogRecord("caifu.x", logging.ERROR, __file__, 1, "failed", None,
                                sys.exc_info())
    out = json.loads(JsonFormatter().format(rec))
    assert out["error_type"] == "ValueError"
    last = out["trace"].strip().splitlines()[-2:]
    assert "in failing_caifu_frame" in last[0] and "raise ValueError" in last[1]
    assert "outer frames left out" in out["trace"]
    assert "13812345678" not in json.dumps(out)  # no message, no local variables
