"""The shell: the app factory, configuration, Celery and the CLI. It wires; it decides nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from celery import Celery
from flask import Flask, g
from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix

from cases import outbox
from cases.database import Database
from console import csrf, init_console
from hotline.celery_app import create_celery
from hotline.config import CONFIG_DIR, Settings, load_settings
from hotline.logs import configure_logging
from ivr import messaging, streams
from ivr import tasks as ivr_tasks
from ivr.entry import VoiceEntry
from ivr.prompts import Prompts, load_options, load_prompts
from ivr.twiml import CallFlow, LiveStreaming
from ivr.views import IVRContext
from ivr.views import bp as ivr_blueprint
from routing import tasks as routing_tasks
from routing.delivery import DeliveryConfig, SMTPConfig
from routing.router import Router
from transcription.models import ModelRegistry


@dataclass(frozen=True)
class Wiring:
    """What web and worker processes share."""

    settings: Settings
    database: Database
    prompts: dict[str, Prompts]
    models: ModelRegistry
    router: Router
    celery: Celery


def wire(settings: Settings) -> Wiring:
    """Set up what both web and worker processes need: logging, database, Celery, jobs."""
    configure_logging(settings.log_level)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url)
    prompts = load_prompts(CONFIG_DIR / "prompts", settings.enabled_locales)
    # Models load lazily, once per process, on first use.
    models = ModelRegistry(settings.vosk_model_paths, settings.models_dir)
    router = Router(
        classifier_path=settings.classifier_path,
        confidence_threshold=settings.routing_confidence_threshold,
    )
    ivr_tasks.configure(
        ivr_tasks.JobContext(
            database=database, settings=settings, prompts=prompts, models=models, router=router
        )
    )
    routing_tasks.configure(
        routing_tasks.DeliveryContext(
            database=database,
            config=DeliveryConfig(
                public_base_url=settings.public_base_url,
                mail_from=settings.mail_from,
                timeout=settings.delivery_timeout,
                backoff=settings.delivery_backoff,
                retry_window=timedelta(hours=settings.delivery_retry_hours),
                smtp=SMTPConfig(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    starttls=settings.smtp_starttls,
                )
                if settings.smtp_host
                else None,
            ),
            escalation_grace=timedelta(hours=settings.escalation_grace_hours),
            render_caller_text=messaging.caller_text_renderer(
                prompts, default_locale=settings.default_locale
            ),
            # Without a Twilio account (or a mock), texts are written to the log instead.
            send_sms=messaging.twilio_sms_sender(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token,
                from_number=settings.twilio_from_number,
                api_base_url=settings.twilio_api_base_url,
                timeout=settings.delivery_timeout,
            )
            if settings.sms_enabled
            else None,
        )
    )
    # Each outbox row is sent by a job once the transaction that wrote it has committed.
    outbox.sent_after_commit(database.sessions, send=routing_tasks.enqueue_delivery)
    return Wiring(settings, database, prompts, models, router, create_celery(settings))


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """The Flask app, configured from the environment (or from `environ` in tests)."""
    settings = load_settings(environ)
    wiring = wire(settings)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(SECRET_KEY=settings.secret_key)
    app.extensions["hotline"] = wiring
    live = streams.LiveTranscription(
        database=wiring.database,
        models=wiring.models,
        secret=settings.secret_key,
        public_base_url=settings.public_base_url,
        max_streams=settings.live_stream_limit,
        on_complete_transcript=lambda case_id: ivr_tasks.enqueue(ivr_tasks.route_case, case_id),
    )
    app.extensions["ivr.live"] = live
    app.extensions["ivr"] = IVRContext(
        flow=CallFlow(
            prompts=wiring.prompts,
            options=load_options(CONFIG_DIR / "ivr.toml"),
            locales=settings.enabled_locales,
            public_base_url=settings.public_base_url,
            # Stream live only where a model can listen; elsewhere the desk listens instead.
            live=LiveStreaming(
                url=live.stream_url(),
                locales=frozenset(wiring.models.available()) & set(settings.enabled_locales),
                token_for=lambda call_sid: streams.stream_token(settings.secret_key, call_sid),
            ),
        ),
        database=wiring.database,
        validator=RequestValidator(settings.twilio_auth_token),
    )
    app.register_blueprint(ivr_blueprint)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    # Outermost: a plain signed first webhook is answered before any other layer runs.
    app.wsgi_app = VoiceEntry(app.wsgi_app, app.extensions["ivr"])  # type: ignore[method-assign]
    app.register_blueprint(messaging.bp)
    init_console(app)
    # Twilio signs its Messaging webhook; it cannot carry a CSRF token.
    csrf.exempt(messaging.bp)

    @app.teardown_appcontext
    def close_session(_error: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from hotline.cli import register_commands

    register_commands(app)
    return app
