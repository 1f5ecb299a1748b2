"""Domain errors: the one vocabulary of failure that every layer raises and every edge maps once.

Each error carries the OCI Distribution error code it stands for (the spec's ``code`` strings), a
message a person can act on, and optional structured detail. Edges decide the transport (HTTP status,
exit code); nothing below the edges knows about HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TrustyardError(Exception):
    """Base of every error trustyard raises on purpose."""

    code: ClassVar[str] = "UNKNOWN"
    default_message: ClassVar[str] = "unknown error"

    def __init__(self, message: str | None = None, detail: Any = None) -> None:
        self.message = message or self.default_message
        self.detail = detail
        super().__init__(self.message)


class BlobUnknown(TrustyardError):
    code = "BLOB_UNKNOWN"
    default_message = "blob unknown to registry"


class BlobUploadInvalid(TrustyardError):
    code = "BLOB_UPLOAD_INVALID"
    default_message = "blob upload invalid"


class BlobUploadUnknown(TrustyardError):
    code = "BLOB_UPLOAD_UNKNOWN"
    default_message = "blob upload unknown to registry"


class DigestInvalid(TrustyardError):
    code = "DIGEST_INVALID"
    default_message = "provided digest did not match uploaded content"


class ManifestBlobUnknown(TrustyardError):
    code = "MANIFEST_BLOB_UNKNOWN"
    default_message = "manifest references a manifest or blob unknown to registry"


class ManifestInvalid(TrustyardError):
    code = "MANIFEST_INVALID"
    default_message = "manifest invalid"


class ManifestUnknown(TrustyardError):
    code = "MANIFEST_UNKNOWN"
    default_message = "manifest unknown to registry"


class NameInvalid(TrustyardError):
    code = "NAME_INVALID"
    default_message = "invalid repository name"


class NameUnknown(TrustyardError):
    code = "NAME_UNKNOWN"
    default_message = "repository name not known to registry"


class SizeInvalid(TrustyardError):
    code = "SIZE_INVALID"
    default_message = "provided length did not match content length"


class RangeInvalid(TrustyardError):
    """A Content-Range or Range that does not fit the upload or blob (HTTP 416)."""

    code = "BLOB_UPLOAD_INVALID"
    default_message = "requested range not satisfiable"


class UploadOutOfOrder(RangeInvalid):
    """A chunk (PATCH, or the final PUT's body) that does not start where the upload's bytes end (HTTP 416).

    The answer carries what the upload holds (``Range``) and where to continue (``Location``), so a client
    resumes from there.
    """

    def __init__(self, message: str, *, repository: str, upload_id: str, size: int) -> None:
        super().__init__(message, detail={"size": size})
        self.repository = repository
        self.upload_id = upload_id
        self.size = size


class RangeNotSatisfiable(RangeInvalid):
    """A blob GET whose Range selects no byte of the blob (HTTP 416 with ``Content-Range: bytes */SIZE``)."""

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message, detail={"size": size})
        self.size = size


class BlobInUse(TrustyardError):
    """A blob DELETE refused because a manifest in the repository still references the blob (HTTP 405, one
    of the answers the spec lists for a blob DELETE): delete the manifest first."""

    code = "UNSUPPORTED"
    default_message = "the blob is referenced by a manifest"


class TagInvalid(TrustyardError):
    code = "TAG_INVALID"
    default_message = "invalid tag"


class PaginationNumberInvalid(TrustyardError):
    code = "PAGINATION_NUMBER_INVALID"
    default_message = "invalid number of results requested"


class Unauthorized(TrustyardError):
    """No (valid) credentials. ``scope`` is the Docker token scope the operation needs, for the challenge."""

    code = "UNAUTHORIZED"
    default_message = "authentication required"

    def __init__(self, message: str | None = None, detail: Any = None, *, scope: str | None = None) -> None:
        super().__init__(message, detail)
        self.scope = scope


class InvalidToken(Unauthorized):
    """A Bearer token that is malformed, forged or expired: the challenge says ``error="invalid_token"`` and
    the client fetches a new one. A valid token that does not cover the operation (an anonymous one, too) is
    not this: that challenge says ``insufficient_scope``."""

    default_message = "invalid or expired token"


class Denied(TrustyardError):
    code = "DENIED"
    default_message = "requested access to the resource is denied"


class InsufficientScope(Denied):
    """Authenticated, but the credentials do not cover the operation; ``scope`` is what it needs.

    Over token auth this is a 401 with ``error="insufficient_scope"``: the client asks the token endpoint for
    that scope and retries, and the endpoint grants only what the caller is allowed.
    """

    def __init__(self, message: str | None = None, detail: Any = None, *, scope: str) -> None:
        super().__init__(message, detail)
        self.scope = scope


class LoginFailed(Unauthorized):
    """Wrong user name, password or token (deliberately not saying which)."""

    default_message = "incorrect user name, password or token"


class NotFound(TrustyardError):
    """An account, organization, team, grant or token that does not exist."""

    code = "NOT_FOUND"
    default_message = "not found"


class AlreadyExists(TrustyardError):
    code = "ALREADY_EXISTS"
    default_message = "already exists"


class InvalidRequest(TrustyardError):
    """A request to the admin API or CLI whose values are not acceptable (the message says which)."""

    code = "INVALID"
    default_message = "invalid request"


class Unsupported(TrustyardError):
    code = "UNSUPPORTED"
    default_message = "the operation is unsupported"


class TooLarge(TrustyardError):
    """A request body over a configured limit (manifests: 4 MiB)."""

    code = "SIZE_INVALID"
    default_message = "request body too large"


class TooManyRequests(TrustyardError):
    """Slow down; ``retry_after`` (seconds) is when to try again (edges send it as ``Retry-After``)."""

    code = "TOOMANYREQUESTS"
    default_message = "too many requests"

    def __init__(self, message: str | None = None, detail: Any = None, *, retry_after: int | None = None) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after


class StorageUnavailable(TrustyardError):
    """The storage backend failed or could not be reached; the operation stored nothing."""

    code = "UNAVAILABLE"
    default_message = "the storage backend is unavailable"


class ObjectNotFound(TrustyardError):
    """A storage key that does not exist (raised by drivers, usually mapped to a *_UNKNOWN above)."""

    code = "BLOB_UNKNOWN"
    default_message = "object not found in storage"


class StorageBackendGone(StorageUnavailable):
    """A storage backend generation has no stored settings, or they no longer build a driver."""

    default_message = "the storage backend is gone"


class ConfigInvalid(TrustyardError):
    code = "CONFIG_INVALID"
    default_message = "invalid configuration"


class StorageProbeFailed(TrustyardError):
    """New storage settings did not pass the probe (write, stat, read, delete); the old backend stays."""

    code = "STORAGE_PROBE_FAILED"
    default_message = "the storage backend failed the probe"


class SettingPinned(TrustyardError):
    """A runtime setting that the config file or environment sets; change it there."""

    code = "SETTING_PINNED"
    default_message = "this setting is set by the configuration file or environment"


class BlobCollected(StorageUnavailable):
    """A push met garbage collection: the blob it was linking was collected (the push took longer than the
    grace window) or is being collected right now. Nothing was recorded; pushing again succeeds."""

    default_message = "the blob was garbage-collected while it was pushed; push it again"
