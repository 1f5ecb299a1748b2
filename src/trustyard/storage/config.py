"""The ``storage:`` settings block, as CNCF Distribution's ``config.yml`` spells it, and which driver it names.

One driver section (``filesystem``, ``inmemory``; the object-store drivers add theirs) plus the storage-wide
sections Distribution defines (``delete``, ``redirect``, ``cache``, ``maintenance``, ``tag``), accepted so that
an existing Distribution or DTR configuration loads unchanged. Unknown keys are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from trustyard.errors import ConfigInvalid


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilesystemStorage(_Strict):
    rootdirectory: Path | None = None  # default: DATA_DIR/storage
    maxthreads: int | None = None  # Distribution's knob; accepted, threads are sized by trustyard
    directio: bool = True  # trustyard's own: streamed bodies bypass the page cache (storage/direct_io.py)


class InMemoryStorage(_Strict):
    pass


class S3Storage(_Strict):
    """Distribution's ``s3`` driver parameters (same names), for AWS, IBM COS, MinIO, Ceph, Swift's s3api."""

    bucket: str
    region: str = "us-east-1"  # non-AWS stores take any value, but Swift's s3api checks it in SigV4
    regionendpoint: str | None = None  # e.g. https://s3.eu-de.cloud-object-storage.appdomain.cloud
    accesskey: str | None = None  # both unset: the default credential chain (environment, profile, IAM role)
    secretkey: SecretStr | None = None  # SecretStr: never shown in reprs, logs or errors
    sessiontoken: SecretStr | None = None
    rootdirectory: str = ""  # key prefix inside the bucket; leading and trailing '/' are ignored
    forcepathstyle: bool = False  # path-style addressing (MinIO, Ceph, IBM COS behind a plain endpoint)
    secure: bool = True  # https when regionendpoint names no scheme
    skipverify: bool = False  # do not verify the endpoint's TLS certificate
    chunksize: int = 10 * 1024 * 1024  # multipart part size (grows so an object stays under 10,000 parts)
    storageclass: str | None = None  # e.g. STANDARD_IA; NONE or unset: the bucket's default
    redirect: bool = True  # serve blob GETs as presigned URLs
    encrypt: bool = False  # server-side encryption (AES256, or aws:kms with keyid)
    keyid: str | None = None
    objectacl: str | None = None  # canned ACL; "private" (the default) sends none
    # Moves above the threshold use UploadPartCopy in ranges of the chunk size. A store answers a copy only when it
    # is done, so these bound how long one request is silent: on Swift's s3api here, ~9 s per 256 MiB with four
    # at once. 1 GiB ranges (the old default) ran into the 60 s read timeout on a loaded machine, and a single
    # CopyObject of several GiB (the old threshold was 5 GiB) is slower still.
    multipartcopythresholdsize: int = 512 * 1024**2
    multipartcopychunksize: int = 256 * 1024**2
    multipartcopymaxconcurrency: int = 4
    useragent: str | None = None
    usedualstack: bool = False
    accelerate: bool = False
    # Accepted so a Distribution config loads; they change nothing here (see docs/storage.md).
    v4auth: bool | None = None  # always SigV4
    loglevel: str | None = None
    checksum_disabled: bool | None = None
    checksum_algorithm: str | None = None
    maxrequestspersecond: int | None = None
    credentialsconfigpath: str | None = None
    usefipsendpoint: bool | None = None


class SwiftStorage(_Strict):
    """Distribution's ``swift`` driver parameters (same names): OpenStack Swift, IBM COS's Regional Swift API."""

    authurl: str  # v1.0: https://HOST/auth/v1.0/ (IBM COS); Keystone v3: https://HOST:5000/v3
    username: str  # v1.0: ACCOUNT:USER; Keystone: the user name
    password: SecretStr  # v1.0: the API key. SecretStr: never shown in reprs, logs or errors
    container: str  # created if missing
    authversion: int | None = None  # 1 or 3; unset or 0: guessed from authurl (/v3 -> 3, else 1)
    tenant: str | None = None  # Keystone project name (or tenantid)
    tenantid: str | None = None
    domain: str | None = None  # Keystone user domain name (or domainid)
    domainid: str | None = None
    tenantdomain: str | None = None  # the project's domain; default: the user's domain
    tenantdomainid: str | None = None
    trustid: str | None = None  # Keystone trust to scope the token to, instead of a project
    region: str | None = None  # picks the object-store endpoint of this region from Keystone's catalog
    endpointtype: str = "public"  # public, internal or admin endpoint from the catalog
    insecureskipverify: bool = False  # do not verify the TLS certificate (auth and storage)
    chunksize: int = Field(default=20 * 1024 * 1024, ge=1024 * 1024)  # SLO segment size; buffered in memory
    prefix: str = ""  # objects live under <prefix>/files/, segments under <prefix>/segments/
    secretkey: SecretStr | None = None  # temp-URL key: set -> blob GETs redirect to temp URLs
    tempurlcontainerkey: bool = False  # the key is the container's (true) or the account's (false)
    tempurlmethods: list[str] = Field(default_factory=lambda: ["GET", "HEAD"])  # methods redirected
    redirect: bool = True  # serve blob GETs as temp URLs when secretkey is set
    # Accepted so a Distribution config loads; they change nothing here (see docs/storage.md).
    accesskey: str | None = None  # HP Helion Cloud's temp-URL variant (that cloud is gone)


#: Driver sections in the order they are looked for.
DRIVERS = ("filesystem", "inmemory", "s3", "swift")


class StorageSettings(_Strict):
    filesystem: FilesystemStorage | None = None
    inmemory: InMemoryStorage | None = None
    s3: S3Storage | None = None
    swift: SwiftStorage | None = None
    # Distribution's storage-wide sections.
    delete: dict[str, Any] | None = None
    redirect: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None
    maintenance: dict[str, Any] | None = None
    tag: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_driver(self) -> StorageSettings:
        chosen = [name for name in DRIVERS if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise ValueError(f"storage: configure exactly one driver, not {' and '.join(chosen)}")
        return self

    @property
    def redirects_disabled(self) -> bool:
        """Distribution turns redirects off storage-wide with ``redirect: {disable: true}``."""
        return str((self.redirect or {}).get("disable", False)).lower() in ("true", "1", "yes", "on")

    @property
    def driver(self) -> str:
        """The configured driver's name; filesystem when none is configured."""
        return next((name for name in DRIVERS if getattr(self, name) is not None), "filesystem")

    def describe(self) -> str:
        """The backend in words, for people (the web UI's messages) and the audit log."""
        if self.s3 is not None:
            where = f" at {self.s3.regionendpoint}" if self.s3.regionendpoint else ""
            return f"the S3 bucket {self.s3.bucket}{where}"
        if self.swift is not None:
            return f"the Swift container {self.swift.container} ({self.swift.authurl})"
        if self.filesystem is not None and self.filesystem.rootdirectory is not None:
            return f"the directory {self.filesystem.rootdirectory}"
        return f"the {self.driver} default" if self.driver != "filesystem" else "the default directory"

    def absolute(self) -> StorageSettings:
        """The same settings with relative paths made absolute (workers may run from another directory)."""
        fs = self.filesystem
        if fs is None or fs.rootdirectory is None:
            return self
        return self.model_copy(
            update={"filesystem": fs.model_copy(update={"rootdirectory": fs.rootdirectory.expanduser().absolute()})}
        )


def parse_storage_block(document: Any) -> StorageSettings:
    """A ``storage:`` block from YAML or JSON (optionally still wrapped in ``{"storage": ...}``), checked."""
    if isinstance(document, dict) and isinstance(document.get("storage"), dict):
        document = document["storage"]
    if not isinstance(document, dict):
        raise ConfigInvalid('storage settings must be an object such as {"s3": {"bucket": ...}}')
    try:
        return StorageSettings.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigInvalid(f"invalid storage settings: {problems}") from None
