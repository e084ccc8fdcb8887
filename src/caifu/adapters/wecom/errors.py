"""WeCom's error codes as caifu meets them, and the one error the WeCom client raises.

    CaifuError
    └── WeComError   WeCom refused a call (its ``errcode``), or could not be reached (-1)
"""

from __future__ import annotations

from caifu.core.errors import CaifuError

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential / token, token expired
BUSY_ERRCODES = frozenset({-1, 45009, 45033})  # system busy, frequency limit, concurrency limit
NOT_A_MEMBER = 60111  # WeCom's "userid not found": an OAuth code of someone outside the corp
_HINTS = {
    40001: "check the app's corp id and secret",
    40013: "check the corp id",
    40029: "the OAuth code is invalid, used or expired: sign in again",
    45009: "WeCom's per-API rate limit (2000/min): try again later",
    48002: "the app has no permission for this API: grant it in the WeCom admin console",
    60020: "this server's IP is not in the app's trusted IP list",
    84061: "there is no follow relation between this advisor and this customer",
}


class WeComError(CaifuError):
    """WeCom refused a call or could not be reached. ``errcode`` is WeCom's code, or -1 for a
    network or HTTP failure (then ``upstream_status`` is set for the latter). Never carries the
    secret or a token."""

    code = "wecom"
    http_status = 502  # the API's answer: a gateway's upstream failed

    def __init__(self, errcode: int, errmsg: str, api: str, *,
                 upstream_status: int | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api
        self.upstream_status = upstream_status
        hint = _HINTS.get(errcode)
        super().__init__(f"WeCom {api} failed: errcode {errcode} ({errmsg})"
                         + (f"; {hint}" if hint else ""))
