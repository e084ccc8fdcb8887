"""The errors caifu raises, in one place.

Every error a user can meet says what went wrong and what to do about it: the file, line,
column, value and rule where there is one.

    CaifuError                     base; ``str(err)`` is the message shown to a user
    ├── ConfigError                bad workspace or mapping configuration, unknown tenant/table
    ├── WorkspaceError             no workspace at a path, or it cannot be opened
    ├── TenantError                a tenant is missing or its id is invalid
    ├── SourceError                a source file cannot be ingested as a whole
    │   ├── UnreadableSourceError  missing, unreadable or not in the declared format
    │   ├── EncodingError          bytes that do not decode in the declared encoding
    │   └── SchemaMismatchError    unknown, missing or duplicated columns
    ├── ContractError              a table contract itself is inconsistent (a bug in caifu)
    ├── AuthenticationError        no valid credentials (the API answers 401)
    ├── NotFoundError              no such object *for this caller*: missing, another tenant's,
    │                              or outside the caller's scope — never told apart (404)
    ├── PermissionDeniedError      visible, but this role may not do that (403)
    ├── RateLimitedError           over the key's quota; ``retry_after`` seconds (429)
    └── PayloadTooLargeError       a request body or upload over the configured bound (413)

Rejected *rows* are not errors: they go to the quarantine with reason codes, and the batch
continues. Errors are for what stops a whole file.
"""

from __future__ import annotations


class CaifuError(Exception):
    """Base of all caifu errors."""


class ConfigError(CaifuError):
    """Configuration (workspace, mapping, tenant settings) is invalid."""


class WorkspaceError(CaifuError):
    """The workspace is missing or cannot be used."""


class TenantError(CaifuError):
    """The tenant does not exist or its id is not acceptable."""


class ContractError(CaifuError):
    """A table contract is inconsistent."""


class AuthenticationError(CaifuError):
    """The credentials are missing, wrong, expired or revoked."""


class NotFoundError(CaifuError):
    """The object does not exist for this caller (it may exist for someone else)."""


class PermissionDeniedError(CaifuError):
    """The caller sees the object but may not do what was asked."""


class RateLimitedError(CaifuError):
    """Too many requests for the caller's quota; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLargeError(CaifuError):
    """A request body or an upload is larger than the service accepts."""


class SourceError(CaifuError):
    """A source file cannot be ingested; carries where the problem is."""

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


class EncodingError(SourceError):
    """The file's bytes do not decode in the declared encoding."""


class SchemaMismatchError(SourceError):
    """The file's columns do not match the table contract and mapping."""
