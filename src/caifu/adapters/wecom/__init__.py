"""WeCom (企业微信): the server API client, and a fake server beside it for tests and the demo.

    from caifu.adapters.wecom import WeComClient, TokenCache, WeComError, jsapi_signature
    from caifu.adapters.wecom.fake import FakeWeCom      # tests, demo stub (not imported here)
"""

from caifu.adapters.wecom.client import (
    BASE_URL,
    SEND_STATUS,
    ContactWay,
    MassSend,
    Page,
    WeComClient,
)
from caifu.adapters.wecom.errors import NOT_A_MEMBER, WeComError
from caifu.adapters.wecom.ratelimit import RateLimiter
from caifu.adapters.wecom.tokens import TokenCache, jsapi_signature, redact

__all__ = [
    "BASE_URL",
    "NOT_A_MEMBER",
    "SEND_STATUS",
    "ContactWay",
    "MassSend",
    "Page",
    "RateLimiter",
    "TokenCache",
    "WeComClient",
    "WeComError",
    "jsapi_signature",
    "redact",
]
