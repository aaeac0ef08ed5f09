"""The factories: `wire` builds what web and worker processes share, `build_app` the Flask app
that registers each audience's blueprints and wires them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from flask import Flask
from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix

from api.open311 import bp as open311_blueprint
from api.views import bp as api_blueprint
from cases import free_text, outbox
from cases.locales import LOCALES
from console import init_console
from delivery.channels import Senders
from delivery.messages import DeliveryConfig, SMTPConfig
from delivery.sms import twilio_sms_sender
from delivery.tasks import enqueue_delivery
from hotline.celery_app import create_celery
from hotline.config import CONFIG_DIR, Settings, load_settings
from hotline.db import Database
from hotline.health import register_probes
from hotline.logs import configure_logging
from hotline.metrics import WebhookMetrics, count_domain_changes, count_jobs, register_metrics
from hotline.web import SecurityHeaders, csrf, init_web
from hotline.wiring import EXTENSION, Wiring, close_request_session
from ivr import interrupt_views as ivr_interrupt_views
from ivr import queue_views as ivr_queue_views
from ivr import sms as ivr_sms
from ivr import views as ivr_views
from ivr.entry import VoiceEntry
from ivr.prompts import Prompts, load_options, load_prompts
from ivr.seat_calls import CeleryTelephony
from ivr.sms import caller_text_renderer
from ivr.streams import LiveTranscription, new_stream_token, stream_url
from ivr.twiml import CallFlow, LiveStreaming
from knowledge.base import KnowledgeBase
from public_site.views import bp as public_blueprint
from routing.router import Router
from routing.similarity import load_merge_rules
from transcription.models import ModelRegistry


def wire(settings: Settings) -> Wiring:
    """Build what web and worker processes need: logging, database, engines, senders, Celery."""
    configure_logging(settings.log_level, settings.log_format)
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url)
    prompts = load_prompts(CONFIG_DIR / "prompts", settings.enabled_locales)
    models = ModelRegistry(settings.vosk_model_paths, settings.models_dir, locales=LOCALES)
    router = Router(
        classifier_path=settings.classifier_path,
        confidence_threshold=settings.routing_confidence_threshold,
    )
    live = LiveTranscription(
        url=stream_url(settings.public_stream_url), max_streams=settings.live_stream_limit
    )
    call_flow = CallFlow(
        prompts=prompts,
        options=load_options(CONFIG_DIR / "ivr.toml"),
        locales=settings.enabled_locales,
        public_base_url=settings.public_base_url,
        # Stream live only where a model can listen; elsewhere the desk listens instead.
        live=LiveStreaming(
            url=live.url,
            locales=frozenset(models.available()) & set(settings.enabled_locales),
            # Bound to the call and short-lived: Twilio opens the stream as it reads this TwiML.
            token_for=lambda call_sid: new_stream_token(settings.secret_key, call_sid),
        ),
    )
    celery = create_celery(settings)
    wiring = Wiring(
        settings=settings,
        database=database,
        router=router,
        models=models,
        prompts=prompts,
        call_flow=call_flow,
        twilio_validator=RequestValidator(settings.twilio_auth_token),
        live=live,
        senders=_senders(settings, prompts),
        celery=celery,
        knowledge=KnowledgeBase(database.session),
        telephony=CeleryTelephony(),
        merge_rules=load_merge_rules(CONFIG_DIR / "merging.toml"),
    )
    celery.wiring = wiring
    # Jobs are sent, and run, through the current app: this one, which knows the wiring.
    celery.set_current()
    celery.set_default()
    # Each outbox row is sent by a job once the transaction that wrote it has committed.
    outbox.sent_after_commit(database.sessions, send=enqueue_delivery)
    # Metrics: what the sessions commit (cases, calls, texts, deliveries), and jobs retried.
    count_domain_changes(database.sessions)
    count_jobs()
    return wiring


def _senders(settings: Settings, prompts: Mapping[str, Prompts]) -> Senders:
    smtp = None
    if settings.smtp_host:
        smtp = SMTPConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    return Senders(
        config=DeliveryConfig(
            public_base_url=settings.public_base_url,
            mail_from=settings.mail_from,
            timeout=settings.delivery_timeout,
            backoff=settings.delivery_backoff,
            retry_window=timedelta(hours=settings.delivery_retry_hours),
            smtp=smtp,
        ),
        render_caller_text=caller_text_renderer(prompts, default_locale=settings.default_locale),
        # Without a Twilio account (or a mock), texts are written to the log instead.
        send_sms=twilio_sms_sender(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            api_base_url=settings.twilio_api_base_url,
            timeout=settings.delivery_timeout,
        )
        if settings.sms_enabled
        else None,
    )


def build_app(environ: Mapping[str, str] | None = None) -> Flask:
    """The app, configured from the environment (or from `environ` in tests)."""
    settings = load_settings(environ)
    wiring = wire(settings)
    app = Flask("hotline", instance_path=str(settings.instance_path))
    app.config.update(SECRET_KEY=settings.secret_key)
    app.extensions[EXTENSION] = wiring
    # Every value a page prints is made readable first: one stored lone surrogate or control
    # character must not turn a case page (or any other) into an error for everyone.
    app.jinja_env.finalize = free_text.readable_value
    init_web(app, settings=settings, timezone=wiring.router.calendar.timezone)

    # Nested, so that the emergency step is a webhook like the others (an "ivr." endpoint).
    ivr_views.bp.register_blueprint(ivr_interrupt_views.bp)
    ivr_views.bp.register_blueprint(ivr_queue_views.bp)
    # Twilio signs its requests, and departments' and Open311 clients' systems send a key with
    # each: none can hold a CSRF token, and none rides on a cookie.
    csrf.exempt(ivr_interrupt_views.bp)
    csrf.exempt(ivr_queue_views.bp)
    for blueprint in (ivr_views.bp, ivr_sms.bp, api_blueprint, open311_blueprint):
        csrf.exempt(blueprint)
        app.register_blueprint(blueprint)
    init_console(app)
    app.register_blueprint(public_blueprint)

    # TRUSTED_PROXIES: how many proxies in front of us to believe about the visitor's address
    # (for the per-address throttles) and about HTTPS (for HSTS and secure cookies' sake).
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    # Every answer Flask gives carries the security headers (outside ProxyFix, it sees HTTPS).
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
    # Outermost: a plain signed first webhook is answered before any other layer runs. Its
    # TwiML, for Twilio and never a browser, is the one answer without the browser headers.
    app.wsgi_app = VoiceEntry(app.wsgi_app, wiring)  # type: ignore[method-assign]
    # Around it, the webhooks' timer: the voice lane's answers are timed and counted too.
    app.wsgi_app = WebhookMetrics(app.wsgi_app, app.url_map)  # type: ignore[method-assign]

    @app.teardown_appcontext
    def close_session(_error: BaseException | None) -> None:
        close_request_session()

    register_probes(app, wiring)
    register_metrics(app, wiring)

    from hotline.cli import register_commands

    register_commands(app)
    return app
