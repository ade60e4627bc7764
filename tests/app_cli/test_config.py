"""Settings from ANALYTICS_* variables: defaults, one message per bad value, masked secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from analytics_app.config import Settings, load_settings
from analytics_app.config.env import Secret, masked_url
from analytics_core.errors import ConfigError

HMAC_KEY = "k" * 40
_EC_PRIVATE = ec.generate_private_key(ec.SECP256R1())
PEM = _EC_PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _errors(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return str(caught.value).splitlines()[1:]


def test_defaults_are_the_embedded_sqlite_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """With no variables: SQLite under ./data, exports in ./data/exports, 127.0.0.1:8084."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.storage == "sqlite"
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'analytics.db'}"
    assert settings.export_dir == tmp_path / "data" / "exports"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8084, 2)
    assert settings.s3 is None
    assert settings.redis_url is None
    assert settings.embedded_worker is True
    assert settings.signed_url_ttl_seconds == 900
    assert (settings.export_retention_days, settings.raw_retention_days,
            settings.rollup_retention_months) == (90, 400, 13)


def test_data_dir_moves_the_database_and_exports(tmp_path: Path):
    """ANALYTICS_DATA_DIR is the default home of the SQLite file and the export directory."""
    settings = load_settings({"ANALYTICS_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'analytics.db'}"
    assert settings.export_dir == tmp_path / "exports"


def test_memory_mode_defaults_to_one_worker():
    """`memory` selects the in-memory storage, served by a single worker process."""
    settings = load_settings({"ANALYTICS_DATABASE_URL": "memory"})
    assert settings.storage == "memory"
    assert settings.workers == 1


def test_memory_mode_refuses_several_workers():
    """Several processes cannot share in-memory data, so WORKERS > 1 is refused."""
    errors = _errors({"ANALYTICS_DATABASE_URL": "memory", "ANALYTICS_WORKERS": "3"})
    assert errors == ["  ANALYTICS_WORKERS: must be 1 with ANALYTICS_DATABASE_URL=memory "
                      "(each worker process would hold its own data)"]


def test_postgres_urls_use_psycopg3():
    """postgres:// and postgresql:// URLs select the psycopg 3 driver."""
    settings = load_settings({"ANALYTICS_DATABASE_URL": "postgres://u:p@db:5432/analytics"})
    assert settings.storage == "postgres"
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/analytics"


def test_every_bad_value_is_named_once():
    """All invalid variables are reported together, one line each, naming the variable."""
    errors = _errors({
        "ANALYTICS_PORT": "http", "ANALYTICS_WORKERS": "0", "ANALYTICS_GATEWAY_HEADERS": "maybe",
        "ANALYTICS_LOG_LEVEL": "loud", "ANALYTICS_MONTHLY_EXPORT_TZ": "Mars/Olympus",
        "ANALYTICS_DATABASE_URL": "mysql://x", "ANALYTICS_REDIS_URL": "http://cache",
        "ANALYTICS_SIGNED_URL_TTL_SECONDS": "9999999", "ANALYTICS_WORKER_POLL_SECONDS": "x",
    })
    names = sorted(line.strip().split(":")[0] for line in errors)
    assert names == sorted([
        "ANALYTICS_PORT", "ANALYTICS_WORKERS", "ANALYTICS_GATEWAY_HEADERS", "ANALYTICS_LOG_LEVEL",
        "ANALYTICS_MONTHLY_EXPORT_TZ", "ANALYTICS_DATABASE_URL", "ANALYTICS_REDIS_URL",
        "ANALYTICS_SIGNED_URL_TTL_SECONDS", "ANALYTICS_WORKER_POLL_SECONDS",
    ])
    assert "  ANALYTICS_PORT: must be an integer, got 'http'" in errors
    assert "  ANALYTICS_MONTHLY_EXPORT_TZ: unknown IANA time zone 'Mars/Olympus'" in errors


def test_unknown_variable_is_an_error_with_a_suggestion():
    """A misspelt ANALYTICS_ variable is reported (with the closest real name), not ignored."""
    errors = _errors({"ANALYTICS_DATABSE_URL": "memory"})
    assert errors == ["  ANALYTICS_DATABSE_URL: unknown setting "
                      "(did you mean ANALYTICS_DATABASE_URL?)"]


def test_test_suite_variables_are_ignored():
    """ANALYTICS_TEST_* variables belong to the test suite and are not settings."""
    load_settings({"ANALYTICS_TEST_POSTGRES_URL": "postgresql://x", "ANALYTICS_DATABASE_URL":
                   "memory"})


def test_short_hmac_key_is_refused():
    """An HS256 secret shorter than 32 bytes is refused."""
    errors = _errors({"ANALYTICS_JWT_KEY": "short"})
    assert errors == ["  ANALYTICS_JWT_KEY: an HMAC secret must be at least 32 bytes long"]


def test_mixing_hmac_and_public_key_algorithms_is_refused():
    """HS* with RS*/ES* would allow algorithm confusion, so it is refused."""
    errors = _errors({"ANALYTICS_JWT_ALGORITHMS": "HS256,RS256", "ANALYTICS_JWT_KEY": PEM})
    assert "  ANALYTICS_JWT_ALGORITHMS: do not mix HS* with RS*/ES* algorithms" in errors


def test_alg_none_is_not_an_algorithm():
    """`none` is not accepted as a JWT algorithm."""
    errors = _errors({"ANALYTICS_JWT_ALGORITHMS": "none"})
    assert errors[0].startswith("  ANALYTICS_JWT_ALGORITHMS: unsupported NONE")


def test_public_key_is_read_from_a_file(tmp_path: Path):
    """ANALYTICS_JWT_KEY_FILE is read at start; RS256 needs a PEM key."""
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(PEM)
    settings = load_settings({"ANALYTICS_JWT_ALGORITHMS": "RS256,ES256",
                              "ANALYTICS_JWT_KEY_FILE": str(key_file)})
    assert settings.jwt_key is not None
    assert settings.jwt_key.reveal() == PEM.strip()
    assert settings.jwt_algorithms == ("RS256", "ES256")


def test_missing_key_file_is_named(tmp_path: Path):
    """An unreadable key file is reported with its variable."""
    errors = _errors({"ANALYTICS_JWT_KEY_FILE": str(tmp_path / "absent.pem")})
    assert errors[0].startswith("  ANALYTICS_JWT_KEY_FILE: cannot read")


def test_s3_settings_build_an_s3_config():
    """A bucket switches exports to S3 with the given endpoint, path style and SSE."""
    settings = load_settings({
        "ANALYTICS_S3_BUCKET": "exports", "ANALYTICS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "ANALYTICS_S3_PATH_STYLE": "true", "ANALYTICS_S3_SSE": "aws:kms",
        "ANALYTICS_S3_KMS_KEY_ID": "alias/exports", "ANALYTICS_S3_ACCESS_KEY_ID": "AKIA1",
        "ANALYTICS_S3_SECRET_ACCESS_KEY": "s3cr3t-value",
    })
    assert settings.s3 is not None
    assert (settings.s3.bucket, settings.s3.path_style, settings.s3.sse) == (
        "exports", True, "aws:kms")


def test_s3_credentials_come_in_pairs():
    """An access key without its secret is refused."""
    errors = _errors({"ANALYTICS_S3_BUCKET": "b", "ANALYTICS_S3_ACCESS_KEY_ID": "AKIA1"})
    assert errors == ["  ANALYTICS_S3_SECRET_ACCESS_KEY: ANALYTICS_S3_ACCESS_KEY_ID and "
                      "ANALYTICS_S3_SECRET_ACCESS_KEY must be set together"]


def test_repr_masks_every_secret():
    """repr(settings) shows neither the JWT key, the S3 secret nor URL passwords."""
    settings = load_settings({
        "ANALYTICS_DATABASE_URL": "postgresql://app:db-pass-123@db/analytics",
        "ANALYTICS_REDIS_URL": "redis://:redis-pass-456@cache:6379/0",
        "ANALYTICS_JWT_KEY": HMAC_KEY,
        "ANALYTICS_S3_BUCKET": "b", "ANALYTICS_S3_ACCESS_KEY_ID": "AKIA1",
        "ANALYTICS_S3_SECRET_ACCESS_KEY": "s3-secret-789",
    })
    text = repr(settings)
    for secret in ("db-pass-123", "redis-pass-456", HMAC_KEY, "s3-secret-789"):
        assert secret not in text
    assert "app:***@db" in text


def test_error_messages_mask_url_passwords():
    """A rejected URL is echoed without its password."""
    errors = _errors({"ANALYTICS_DATABASE_URL": "mysql://root:hunter2@db/x"})
    assert "hunter2" not in errors[0]
    assert "root:***@db" in errors[0]


def test_secret_reveals_only_on_request():
    """Secret hides its value in str and repr."""
    secret = Secret("value")
    assert "value" not in f"{secret} {secret!r}"
    assert secret.reveal() == "value"


def test_masked_url_keeps_urls_without_password():
    """URLs without a password are unchanged."""
    assert masked_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_plain_settings_object_is_the_memory_mode():
    """Settings() (library use) is the in-memory mode."""
    assert Settings().storage == "memory"


def _private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize(("algorithms", "key", "reason"), [
    ("RS256", _private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
     "is a private key; configure the matching PEM public key"),
    ("ES256", _private_pem(_EC_PRIVATE), "is a private key"),
    ("RS256", PEM, "must be an RSA public key for RS* algorithms"),
    ("RS256", "-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n",
     "must be a PEM public key"),
    ("RS256", "x" * 40, "must be a PEM public key"),
])
def test_unusable_public_key_is_refused_at_start(algorithms: str, key: str, reason: str):
    """A private key, garbage or a key of the wrong family is a config error naming the
    variable, never a 500 on every bearer request."""
    [error] = _errors({"ANALYTICS_JWT_ALGORITHMS": algorithms, "ANALYTICS_JWT_KEY": key})
    assert error.startswith(f"  ANALYTICS_JWT_KEY: {reason}")
    assert "PRIVATE" not in error
    assert "MIG" not in error
