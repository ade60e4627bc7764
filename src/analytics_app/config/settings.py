"""Settings from `ANALYTICS_*` environment variables, validated at start, secrets masked."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import attrs
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from analytics_app.config.env import EnvReader, Secret, masked_url
from analytics_app.config.stream import StreamConfig, read_stream_config
from analytics_core.attribution import DEFAULT_VALUE_CAP, parse_keys
from analytics_core.errors import ConfigError
from analytics_core.timegrid import zone

MEMORY = "memory"
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})
MIN_HMAC_KEY_BYTES = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SSE_MODES = ("AES256", "aws:kms")
MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600  # the S3 SigV4 maximum

Storage = Literal["memory", "sqlite", "postgres"]


def _masked_repr(url: str | None) -> str:
    return repr(masked_url(url))


@attrs.frozen
class S3Config:
    """Where exports go when an S3 bucket is configured."""

    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    path_style: bool = False
    sse: str = "AES256"
    kms_key_id: str | None = None


@attrs.frozen
class Settings:
    """Every setting of the product. `load_settings()` reads them from the environment (its
    defaults are the embedded SQLite mode); `Settings()` itself is the in-memory mode."""

    data_dir: Path = Path("data")
    database_url: str = attrs.field(default=MEMORY, repr=_masked_repr)
    export_dir: Path = Path("data/exports")
    s3: S3Config | None = None
    redis_url: str | None = attrs.field(default=None, repr=_masked_repr)
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_key: Secret | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = 30
    jwt_org_claim: str = "org_id"
    jwt_roles_claim: str = "roles"
    gateway_headers: bool = False
    host: str = "127.0.0.1"
    port: int = 8084
    workers: int = 1
    max_body_bytes: int = 10 * 1024 * 1024
    request_header_timeout_seconds: float = 10.0
    request_body_timeout_seconds: float = 30.0
    signed_url_ttl_seconds: int = 900
    export_retention_days: int = 90
    raw_retention_days: int = 400
    rollup_retention_months: int = 13
    export_max_attempts: int = 3
    export_lease_seconds: int = 300
    export_backoff_seconds: int = 10
    worker_poll_seconds: float = 2.0
    worker_metrics_port: int = 0  # /metrics of `analytics worker`; 0 serves none
    embedded_worker: bool = True
    alerts_interval_seconds: float = 30.0  # budget evaluation passes (at most a minute apart)
    webhook_allow_private: bool = False  # deliver to loopback/private/link-local addresses
    webhook_timeout_seconds: float = 10.0  # each socket operation of a webhook attempt
    monthly_export_tz: str = "UTC"
    log_level: str = "INFO"
    rabbitmq: StreamConfig | None = None  # stream ingestion (ANALYTICS_RABBITMQ_*)
    migrations_dir: Path | None = None
    otel_exporter: str = "none"
    attribution_keys: tuple[str, ...] = ()  # metadata keys rolled up for groupBy=tag:KEY
    attribution_value_cap: int = DEFAULT_VALUE_CAP  # distinct values per org, key and day
    focus_provider_name: str = "AI inference platform"  # FOCUS ProviderName/InvoiceIssuerName
    focus_service_name: str = "Model inference"  # FOCUS ServiceName
    ui_secure_cookies: bool = False  # dashboard cookies Secure even over http (TLS proxy)

    @property
    def data_location(self) -> str:
        """Where the data lives, credentials masked: the database and the exports."""
        exports = f"s3://{self.s3.bucket}" if self.s3 else str(self.export_dir)
        return f"database {masked_url(self.database_url)}, exports {exports}"

    def secret_values(self) -> tuple[str, ...]:
        """Every credential of the deployment, for the log redactor (never printed)."""
        values = [urlsplit(url).password for url in (self.database_url, self.redis_url) if url]
        if self.jwt_key is not None:
            values.append(self.jwt_key.reveal())
        if self.s3 is not None:
            values.append(self.s3.access_key_id)
            if self.s3.secret_access_key is not None:
                values.append(self.s3.secret_access_key.reveal())
        # RabbitMQ's public default is no secret, and redacting "guest" would mangle the user name.
        if self.rabbitmq is not None and self.rabbitmq.password != "guest":  # noqa: S105
            values.append(self.rabbitmq.password)
        return tuple(v for v in values if v)

    @property
    def storage(self) -> Storage:
        """Which storage the database URL selects."""
        if self.database_url == MEMORY:
            return "memory"
        return "sqlite" if self.database_url.startswith("sqlite") else "postgres"


def _database_url(r: EnvReader, data_dir: Path) -> str:
    value = r.raw("DATABASE_URL")
    if value is None:
        return f"sqlite:///{data_dir / 'analytics.db'}"
    if value.lower() == MEMORY:
        return MEMORY
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    if scheme == "sqlite":
        path = value.split("://", 1)[1]
        if not path.startswith("/") or path in ("/", "/:memory:"):
            r.fail("DATABASE_URL", "SQLite needs a file: sqlite:////absolute/path.db or "
                   "sqlite:///relative/path.db (use 'memory' for the in-memory mode)")
        return value
    r.fail("DATABASE_URL", f"must be 'memory', sqlite:///FILE or postgresql://..., got "
           f"{masked_url(value)!r}")
    return MEMORY


def _url(r: EnvReader, name: str, schemes: tuple[str, ...]) -> str | None:
    value = r.raw(name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        r.fail(name, f"must be a {' or '.join(s + '://' for s in schemes)} URL, got "
               f"{masked_url(value)!r}")
        return None
    return value


def _s3(r: EnvReader) -> S3Config | None:
    bucket = r.raw("S3_BUCKET")
    endpoint = _url(r, "S3_ENDPOINT_URL", ("http", "https"))
    region, access = r.raw("S3_REGION"), r.raw("S3_ACCESS_KEY_ID")
    secret = r.raw("S3_SECRET_ACCESS_KEY")
    path_style = r.boolean("S3_PATH_STYLE", default=False)
    sse = r.choice("S3_SSE", "AES256", SSE_MODES)
    kms = r.raw("S3_KMS_KEY_ID")
    if (access is None) != (secret is None):
        r.fail("S3_SECRET_ACCESS_KEY" if secret is None else "S3_ACCESS_KEY_ID",
               "ANALYTICS_S3_ACCESS_KEY_ID and ANALYTICS_S3_SECRET_ACCESS_KEY must be set together")
    if kms is not None and sse != "aws:kms":
        r.fail("S3_KMS_KEY_ID", "requires ANALYTICS_S3_SSE=aws:kms")
    if bucket is None:
        if endpoint or access or region:
            r.fail("S3_BUCKET", "is required when other ANALYTICS_S3_* settings are set")
        return None
    return S3Config(bucket, endpoint, region, access, Secret(secret) if secret else None,
                    path_style, sse, kms)


def _jwt_algorithms(r: EnvReader) -> tuple[str, ...]:
    value = r.raw("JWT_ALGORITHMS")
    if value is None:
        return ("HS256",)
    algorithms = tuple(a.strip().upper() for a in value.split(",") if a.strip())
    unknown = [a for a in algorithms if a not in HMAC_ALGORITHMS | PUBLIC_KEY_ALGORITHMS]
    if unknown or not algorithms:
        allowed = ", ".join(sorted(HMAC_ALGORITHMS | PUBLIC_KEY_ALGORITHMS))
        r.fail("JWT_ALGORITHMS", f"unsupported {', '.join(unknown) or 'empty list'}; "
               f"choose from {allowed}")
        return ("HS256",)
    if set(algorithms) & HMAC_ALGORITHMS and set(algorithms) & PUBLIC_KEY_ALGORITHMS:
        # One key cannot be both an HMAC secret and a public key (algorithm confusion).
        r.fail("JWT_ALGORITHMS", "do not mix HS* with RS*/ES* algorithms")
    return algorithms


def _jwt_key(r: EnvReader, algorithms: tuple[str, ...]) -> Secret | None:
    key, key_file = r.raw("JWT_KEY"), r.raw("JWT_KEY_FILE")
    if key is not None and key_file is not None:
        r.fail("JWT_KEY_FILE", "set ANALYTICS_JWT_KEY or ANALYTICS_JWT_KEY_FILE, not both")
        return None
    if key_file is not None:
        try:
            key = Path(key_file).expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            r.fail("JWT_KEY_FILE", f"cannot read {key_file!r}: {e.__class__.__name__}")
            return None
    if key is None:
        return None
    name = "JWT_KEY_FILE" if key_file else "JWT_KEY"
    if set(algorithms) <= HMAC_ALGORITHMS and len(key.encode()) < MIN_HMAC_KEY_BYTES:
        r.fail(name, f"an HMAC secret must be at least {MIN_HMAC_KEY_BYTES} bytes long")
    if set(algorithms) <= PUBLIC_KEY_ALGORITHMS:
        problem = _public_key_problem(key, algorithms)
        if problem is not None:
            r.fail(name, problem)
    return Secret(key)


def _public_key_problem(pem: str, algorithms: tuple[str, ...]) -> str | None:
    """Why `pem` cannot verify tokens of `algorithms` (RS* and/or ES*), or None.

    Checked at start-up so that a wrong key is a configuration error, not a 500 on every bearer
    request: a private key (which must never be deployed to a verifier), a certificate, garbage,
    or a key of a family none of the algorithms uses.
    """
    if "PRIVATE KEY-----" in pem:
        return ("is a private key; configure the matching PEM public key "
                "(a verifier never needs the private key)")
    try:
        public = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return "must be a PEM public key ('-----BEGIN PUBLIC KEY-----') for RS*/ES* algorithms"
    families = {a[:2] for a in algorithms}
    usable = (("RS" in families and isinstance(public, rsa.RSAPublicKey))
              or ("ES" in families and isinstance(public, ec.EllipticCurvePublicKey)))
    if not usable:
        return "must be an RSA public key for RS* algorithms or an EC public key for ES*"
    return None


def _time_zone(r: EnvReader, name: str) -> str:
    value = r.text(name, "UTC")
    try:
        zone(value)
    except ValueError:
        r.fail(name, f"unknown IANA time zone {value!r}")
        return "UTC"
    return value


def _migrations_dir(r: EnvReader) -> Path | None:
    # Read by the SQL adapter itself (analytics_adapters.sql.migrate); validated here.
    value = r.raw("MIGRATIONS_DIR")
    if value is None:
        return None
    path = Path(value).expanduser().absolute()
    if not (path / "env.py").is_file():
        r.fail("MIGRATIONS_DIR", f"{str(path)!r} has no Alembic env.py")
    return path


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every `ANALYTICS_*` variable; ConfigError lists each bad value."""
    r = EnvReader(os.environ if environ is None else environ)
    settings = _read(r)
    r.unknown()
    if r.errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(r.errors))
    return settings


def known_variables() -> list[str]:
    """Every variable the loader reads (the README's configuration table lists each one)."""
    r = EnvReader({})
    _read(r)
    return sorted(r.known)


def _read(r: EnvReader) -> Settings:
    data_dir = Path(r.text("DATA_DIR", "data")).expanduser().absolute()
    database_url = _database_url(r, data_dir)
    algorithms = _jwt_algorithms(r)
    memory = database_url == MEMORY
    workers = r.integer("WORKERS", 1 if memory else 2, 1, 64)
    if memory and workers > 1:
        r.fail("WORKERS", "must be 1 with ANALYTICS_DATABASE_URL=memory "
               "(each worker process would hold its own data)")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        export_dir=Path(r.text("EXPORT_DIR", str(data_dir / "exports"))).expanduser().absolute(),
        s3=_s3(r),
        redis_url=_url(r, "REDIS_URL", ("redis", "rediss", "unix")),
        jwt_algorithms=algorithms,
        jwt_key=_jwt_key(r, algorithms),
        jwt_issuer=r.raw("JWT_ISSUER"),
        jwt_audience=r.raw("JWT_AUDIENCE"),
        jwt_leeway_seconds=r.integer("JWT_LEEWAY_SECONDS", 30, 0, 300),
        jwt_org_claim=r.text("JWT_ORG_CLAIM", "org_id"),
        jwt_roles_claim=r.text("JWT_ROLES_CLAIM", "roles"),
        gateway_headers=r.boolean("GATEWAY_HEADERS", default=False),
        host=r.text("HOST", "127.0.0.1"),
        port=r.integer("PORT", 8084, 1, 65535),
        workers=workers,
        max_body_bytes=r.integer("MAX_BODY_BYTES", 10 * 1024 * 1024, 1024, 1024**3),
        request_header_timeout_seconds=r.number("REQUEST_HEADER_TIMEOUT_SECONDS", 10.0, 0.5, 300),
        request_body_timeout_seconds=r.number("REQUEST_BODY_TIMEOUT_SECONDS", 30.0, 0.5, 3600),
        signed_url_ttl_seconds=r.integer("SIGNED_URL_TTL_SECONDS", 900, 1,
                                         MAX_SIGNED_URL_SECONDS),
        export_retention_days=r.integer("EXPORT_RETENTION_DAYS", 90, 1, 3650),
        raw_retention_days=r.integer("RAW_RETENTION_DAYS", 400, 1, 3650),
        rollup_retention_months=r.integer("ROLLUP_RETENTION_MONTHS", 13, 1, 120),
        export_max_attempts=r.integer("EXPORT_MAX_ATTEMPTS", 3, 1, 100),
        export_lease_seconds=r.integer("EXPORT_LEASE_SECONDS", 300, 5, 86400),
        export_backoff_seconds=r.integer("EXPORT_BACKOFF_SECONDS", 10, 1, 3600),
        worker_poll_seconds=r.number("WORKER_POLL_SECONDS", 2.0, 0.05, 3600),
        worker_metrics_port=r.integer("WORKER_METRICS_PORT", 0, 0, 65535),
        embedded_worker=r.boolean("EMBEDDED_WORKER", default=True),
        ui_secure_cookies=r.boolean("UI_SECURE_COOKIES", default=False),
        alerts_interval_seconds=r.number("ALERTS_INTERVAL_SECONDS", 30.0, 0.05, 60),
        webhook_allow_private=r.boolean("WEBHOOK_ALLOW_PRIVATE", default=False),
        webhook_timeout_seconds=r.number("WEBHOOK_TIMEOUT_SECONDS", 10.0, 0.1, 60),
        monthly_export_tz=_time_zone(r, "MONTHLY_EXPORT_TZ"),
        log_level=r.choice("LOG_LEVEL", "INFO", LOG_LEVELS),
        rabbitmq=read_stream_config(r),
        migrations_dir=_migrations_dir(r),
        # Read again by analytics_app.observability.tracing when it configures the tracer provider.
        otel_exporter=r.choice("OTEL_EXPORTER", "none", ("none", "console", "otlp")),
        attribution_keys=_attribution_keys(r),
        attribution_value_cap=r.integer("ATTRIBUTION_VALUE_CAP", DEFAULT_VALUE_CAP, 1, 100_000),
        focus_provider_name=_focus_name(r, "FOCUS_PROVIDER_NAME", "AI inference platform"),
        focus_service_name=_focus_name(r, "FOCUS_SERVICE_NAME", "Model inference"),
    )


def _focus_name(r: EnvReader, name: str, default: str) -> str:
    value = r.text(name, default).strip()
    if not value or len(value) > 200 or not value.isprintable():
        r.fail(name, "must be 1 to 200 printable characters")
        return default
    return value


def _attribution_keys(r: EnvReader) -> tuple[str, ...]:
    value = r.raw("ATTRIBUTION_KEYS")
    if value is None:
        return ()
    try:
        return parse_keys(value)
    except ValueError as e:
        r.fail("ATTRIBUTION_KEYS", f"{e} (comma-separated metadata keys, e.g. team,feature)")
        return ()
