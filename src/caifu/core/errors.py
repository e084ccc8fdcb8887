"""The errors caifu raises, in one place.

Every error a user can meet says what went wrong and what to do about it: the file, line,
column, value and rule where there is one. Each class carries a stable ``code`` (what an API
client or a script switches on; never reworded), the ``http_status`` the API answers and the
``exit_code`` the CLI exits with. The API's one handler and the CLI's one wrapper read them;
nothing else maps errors to statuses. The whole tree, with the classes other modules derive
(module in brackets), is drawn here once and a test holds it to the code:

    class                           code                     http exit meaning [module]
    CaifuError                      error                    400  2    ``str(err)`` is the message
    ├── ConfigError                 invalid                  422  2    what was given is not usable
    │   ├── ExpressionError         invalid.expression       422  2    [core.expressions]
    │   └── SearchQueryError        invalid.search           422  2    [services.platform.access]
    ├── WorkspaceError              workspace                500  2    no workspace, or unusable
    ├── TenantError                 tenant                   400  2    tenant missing or bad id
    ├── SourceError                 source                   400  3    a source file refused whole
    │   ├── UnreadableSourceError   source.unreadable        400  3    unreadable or not as declared
    │   ├── EncodingError           source.encoding          400  3    not in the declared encoding
    │   └── SchemaMismatchError     source.schema            400  3    columns do not fit the table
    ├── ContractError               contract                 500  70   a bug in a table contract
    ├── AuthenticationError         unauthenticated          401  2    no valid credentials
    ├── NotFoundError               not_found                404  2    none for this caller
    ├── PermissionDeniedError       forbidden                403  2    seen, but not for this role
    │   └── CsrfRefused             forbidden.csrf           403  2    [web.console.routing]
    ├── RateLimitedError            rate_limited             429  2    over quota; ``retry_after`` s
    ├── PayloadTooLargeError        payload_too_large        413  2    body or upload over the bound
    ├── WeComError                  wecom                    502  2    [adapters.wecom.errors]
    ├── CallbackRejected            wecom.callback_rejected  400  2    [scrm.crypto]
    ├── Denied                      sidebar.denied           403  2    [services.scrm.sidebar]
    └── ClvError                    clv                      422  2    [analytics.clv_checks]
        ├── ClvInputError           clv.input                422  2    [analytics.clv_checks]
        └── ClvConvergenceError     clv.convergence          422  2    [analytics.clv]

Decisions behind the table:

- ``ConfigError`` covers every "what you gave cannot be used": a command's option, a request
  field or header, a tenant's YAML file. In each case the person who issued the command or
  request is the one who fixes it, so a separate configuration-versus-input class would split
  one meaning in two; the API answers 422 and the code ``invalid`` — the same code as FastAPI's
  own request validation, so a client handles "fix your input" once.
- ``NotFoundError`` is missing, another tenant's, or outside the caller's scope — never told
  apart, so 404 leaks nothing.
- 5xx errors (``WorkspaceError``, ``ContractError``, ``WeComError``) are not the caller's
  fault; the API logs them and, for 500, answers without the message (it can hold server paths).
- Exit codes: 2 is the generic failure of a command ("the message says why": arguments,
  workspace, tenant, permissions), as before. 3 means a source *file* was refused, so a
  scheduled load can tell "send the file back to the supplier" from "fix the command"; 70
  (``EX_SOFTWARE``) means a bug in caifu — neither retrying nor other input helps. 1 stays
  what a command returns for "ran, and found problems" (``caifu audit verify``) and what an
  unexpected crash gives.

Rejected *rows* are not errors: they go to the quarantine with reason codes, and the batch
continues. Errors are for what stops a whole file.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CaifuError(Exception):
    """Base of all caifu errors."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    exit_code: ClassVar[int] = 2


class ConfigError(CaifuError):
    """What was given (an option, a request field, a configuration file) cannot be used."""

    code = "invalid"
    http_status = 422


class WorkspaceError(CaifuError):
    """The workspace is missing or cannot be used."""

    code = "workspace"
    http_status = 500


class TenantError(CaifuError):
    """The tenant does not exist or its id is not acceptable."""

    code = "tenant"


class ContractError(CaifuError):
    """A table contract is inconsistent."""

    code = "contract"
    http_status = 500
    exit_code = 70


class AuthenticationError(CaifuError):
    """The credentials are missing, wrong, expired or revoked."""

    code = "unauthenticated"
    http_status = 401


class NotFoundError(CaifuError):
    """The object does not exist for this caller (it may exist for someone else)."""

    code = "not_found"
    http_status = 404


class PermissionDeniedError(CaifuError):
    """The caller sees the object but may not do what was asked."""

    code = "forbidden"
    http_status = 403


class RateLimitedError(CaifuError):
    """Too many requests for the caller's quota; try again after ``retry_after`` seconds."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLargeError(CaifuError):
    """A request body or an upload is larger than the service accepts."""

    code = "payload_too_large"
    http_status = 413


class SourceError(CaifuError):
    """A source file cannot be ingested; carries where the problem is."""

    code = "source"
    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        path: str,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        where = path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


class UnreadableSourceError(SourceError):
    """The file is missing, unreadable, or not in the format it claims."""

    code = "source.unreadable"


class EncodingError(SourceError):
    """The file's bytes do not decode in the declared encoding."""

    code = "source.encoding"


class SchemaMismatchError(SourceError):
    """The file's columns do not match the table contract and mapping."""

    code = "source.schema"


def invalid_config(source: str, what: str, err: Any) -> ConfigError:
    """A pydantic ``ValidationError`` of a configuration file as one error naming the file and
    each field (``recommend/acme.yaml: invalid recommendation configuration`` then
    ``  caps.per_customer_per_7_days: … (got -1)``)."""
    lines = [f"{source}: invalid {what}"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        message = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"  {loc}: {message} (got {e.get('input')!r})")
    return ConfigError("\n".join(lines))
