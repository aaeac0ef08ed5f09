"""`flask --app hotline ...` commands: init, case show, simulate-call, transcribe, models,
train, classify, eval, department set, user add, open311 key, backup, restore."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError
from werkzeug.serving import make_server

from cases import callbacks, directory, open311, queries, seats, serialise, staff
from cases.errors import InvalidInputError, UnknownCaseError
from cases.locales import LOCALES
from cases.models import Call, Case, RecordingStatus, utcnow
from cases.privacy import mask_number
from emulator import EmulatorError, Input, RecordingServer, Speak, Step, TwilioEmulator
from emulator.clock import RealClock
from emulator.switchboard import Caller, Switchboard
from hotline import backup, migrate
from hotline.config import CONFIG_DIR, Settings
from hotline.wiring import Wiring, current_wiring
from ivr.stream_server import StreamsServer
from routing.classifier import ModelFormatError, ModelVersionError
from routing.corpus import load_category_examples
from routing.decide import Decision
from routing.emergency_eval import (
    HELDOUT_PATH,
    evaluate_emergencies,
    format_emergency_report,
)
from routing.emergency_eval import load_labelled as load_labelled_emergencies
from routing.evaluate import cross_validate, format_report, save_confusion_matrix_png
from routing.router import ClassifierMissingError, train_and_save
from transcription.audio import AudioError, decode_wav
from transcription.install import (
    OFFICIAL_INDEX_URL,
    OFFICIAL_MODELS,
    OUT_OF_THE_BOX_LOCALES,
    IndexEntry,
    InstallError,
    SiteUnreachableError,
    ensure_models,
    install_model,
)
from transcription.models import ModelUnavailableError
from transcription.recognizer import transcribe


def register_commands(app: Flask) -> None:
    """Attach the CLI commands to the app."""
    app.cli.add_command(init_command)
    app.cli.add_command(case_group)
    app.cli.add_command(simulate_call_command)
    app.cli.add_command(transcribe_command)
    app.cli.add_command(models_group)
    app.cli.add_command(train_command)
    app.cli.add_command(classify_command)
    app.cli.add_command(eval_command)
    app.cli.add_command(ask_command)
    app.cli.add_command(knowledge_eval_command)
    app.cli.add_command(emergency_eval_command)
    app.cli.add_command(department_group)
    app.cli.add_command(user_group)
    app.cli.add_command(queue_group)
    app.cli.add_command(callbacks_group)
    app.cli.add_command(open311_group)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


@contextlib.contextmanager
def database_set_up() -> Iterator[None]:
    """A command's database work, with one clear line if the database has no tables yet."""
    try:
        yield
    except (OperationalError, ProgrammingError) as error:
        if "no such table" in str(error) or "does not exist" in str(error):
            raise click.ClickException(
                "the database is not set up yet: run `flask --app hotline init` first"
            ) from error
        raise


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Migrate the database and load the default directory; safe to run again."""
    wiring = current_wiring()
    migrate.upgrade(wiring.settings.database_url)
    with wiring.database.session() as session, session.begin():
        departments, categories = directory.import_directory(
            session, path=CONFIG_DIR / "directory.toml"
        )
    click.echo(f"database ready; directory: {departments} departments, {categories} categories")
    from knowledge.articles import load_articles
    from knowledge.store import seed_articles

    with wiring.database.session() as session, session.begin():
        seeded = seed_articles(session, load_articles())
    click.echo(
        f"knowledge base: {len(seeded.added)} articles added, {len(seeded.updated)} updated, "
        f"{len(seeded.kept)} kept as the desk edited them"
    )
    if not wiring.settings.classifier_path.exists():
        _train(wiring.settings.classifier_path)


def _train(path: Path) -> None:
    click.echo("training the routing classifier on config/corpus ...", nl=False)
    started = time.perf_counter()
    classifier = train_and_save(path)
    header = classifier.header
    click.echo(
        f" done in {time.perf_counter() - started:.1f} s: {header.examples} examples, "
        f"{len(header.categories)} categories, {header.urgency_examples} urgency examples "
        f"-> {path}"
    )


@click.command("train")
@with_appcontext
def train_command() -> None:
    """Train the routing classifier on the shipped corpus and save it."""
    _train(current_wiring().settings.classifier_path)


@click.command("classify")
@click.argument("text", required=False)
@click.option(
    "--jsonl",
    "jsonl",
    type=click.File("r", encoding="utf-8"),
    help="A file of JSON lines with a `text` field (or plain lines); one answer each.",
)
@with_appcontext
def classify_command(text: str | None, jsonl: TextIO | None) -> None:
    """Classify and route TEXT (or every line of --jsonl): one JSON object per text."""
    if (text is None) == (jsonl is None):
        raise click.UsageError("give either TEXT or --jsonl FILE")
    router = current_wiring().router
    texts = (
        [text] if text is not None else [_line_text(line) for line in jsonl or () if line.strip()]
    )
    now = utcnow()
    try:
        for item in texts:
            decision = router.decide(item, opened_at=now)
            click.echo(json.dumps(_decision_json(item, decision), ensure_ascii=False))
    except (ClassifierMissingError, ModelVersionError, ModelFormatError) as error:
        raise click.ClickException(str(error)) from error


def _line_text(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            return str(json.loads(stripped)["text"])
        except (ValueError, KeyError) as error:
            raise click.ClickException(
                f"not a JSON object with a `text` field: {line!r}"
            ) from error
    return stripped


def _decision_json(text: str, decision: Decision) -> dict[str, object]:
    return {
        "text": text,
        "category": decision.category,
        "department": decision.department,
        "urgency": decision.urgency,
        "confidence": round(decision.confidence, 4),
        "place": decision.place.name if decision.place else None,
        "deadline": decision.deadline.isoformat(),
        "needs_triage": decision.needs_triage,
        "emergency": decision.emergency,
        "explanation": decision.explanation,
    }


@click.command("ask")
@click.argument("text")
@click.option("--locale", type=click.Choice(LOCALES), help="The caller's language (else guessed).")
@with_appcontext
def ask_command(text: str, locale: str | None) -> None:
    """The knowledge base's answer to TEXT as JSON: article (null when none fits), title,
    answer, confidence."""
    from knowledge.retrieval import detect_locale, is_confident

    wiring = current_wiring()
    with database_set_up():
        wiring.knowledge.ready()
    with wiring.database.session() as session:
        suggestion = wiring.knowledge.suggest(session, text, locale)
    answer_locale = locale or detect_locale(text)
    if suggestion is None:
        result: dict[str, object] = {
            "article": None,
            "title": None,
            "answer": None,
            "confidence": None,
            "locale": answer_locale,
            "answer_in_call": False,
        }
    else:
        article_text = suggestion.article.text(suggestion.locale)
        result = {
            "article": suggestion.article.id,
            "title": article_text.title,
            "answer": article_text.answer,
            "confidence": round(suggestion.confidence, 4),
            "locale": suggestion.locale,
            "answer_in_call": is_confident(suggestion),
        }
    click.echo(json.dumps(result, ensure_ascii=False))


@click.command("knowledge-eval")
@click.option(
    "--heldout",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A held-out JSONL file (default config/knowledge/heldout.jsonl).",
)
@with_appcontext
def knowledge_eval_command(heldout: Path | None) -> None:
    """Evaluate retrieval on the held-out questions: accuracy, complaints answered, per locale,
    confusions, ms per question."""
    from knowledge.evaluate import HELDOUT_PATH, evaluate, format_report, load_heldout

    wiring = current_wiring()
    questions = load_heldout(heldout or HELDOUT_PATH)
    click.echo("building the retriever ...", err=True)
    with database_set_up():
        retriever = wiring.knowledge.ready()
    with click.progressbar(length=len(questions), label="asking", file=sys.stderr) as bar:
        report = evaluate(retriever, questions, progress=lambda done, total: bar.update(1))
    click.echo(format_report(report))


@click.command("eval")
@click.option("--folds", default=5, show_default=True)
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the confusion matrix (default: instance/eval/confusion.png).",
)
@with_appcontext
def eval_command(folds: int, png: Path | None) -> None:
    """Stratified cross-validation on the shipped corpus: accuracy, macro-F1, per-class table."""
    examples = load_category_examples()
    with click.progressbar(
        length=folds, label=f"cross-validating on {len(examples)} examples", show_pos=True
    ) as bar:
        report = cross_validate(
            examples, folds=folds, progress=lambda done, _total: bar.update(done - bar.pos)
        )
    click.echo(format_report(report))
    png = png or current_wiring().settings.instance_path / "eval" / "confusion.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    save_confusion_matrix_png(report, png)
    click.echo(f"confusion matrix written to {png}")


@click.command("emergency-eval")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=HELDOUT_PATH,
    show_default=True,
    help="A JSON-lines file of {text, locale, emergency, kind_of_case}.",
)
def emergency_eval_command(path: Path) -> None:
    """Emergency rules on a labelled set: recall, false emergencies, borderline share, misses."""
    click.echo(format_emergency_report(evaluate_emergencies(load_labelled_emergencies(path))))


@click.group("case", cls=AppGroup)
def case_group() -> None:
    """Look at cases."""


@case_group.command("show")
@click.argument("number")
def case_show(number: str) -> None:
    """Print a case as JSON: status, recording and call details."""
    wiring = current_wiring()
    settings: Settings = wiring.settings
    with wiring.database.session() as session, database_set_up():
        try:
            case = queries.get_case(session, number=number)
        except UnknownCaseError as error:
            raise click.ClickException(str(error)) from error
        data = serialise.case_record(case)
    for recording in data["recordings"]:
        if recording["storage_path"]:
            recording["file"] = str(settings.recordings_dir / recording["storage_path"])
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.command("transcribe")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--locale", required=True, type=click.Choice(LOCALES), help="The language spoken.")
@with_appcontext
def transcribe_command(file: Path, locale: str) -> None:
    """Transcribe a WAV file offline and print JSON: text, words, seconds."""
    wiring = current_wiring()
    try:
        audio = decode_wav(file.read_bytes())
        transcript = transcribe(audio, wiring.models.get(locale))
    except (AudioError, ModelUnavailableError) as error:
        raise click.ClickException(str(error)) from error
    result = {"seconds": transcript.duration_seconds, **transcript.to_dict()}
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@click.group("models", cls=AppGroup)
def models_group() -> None:
    """Manage the offline speech models."""


@models_group.command("install")
@click.argument("locale", type=click.Choice(sorted({locale for locale, _ in OFFICIAL_MODELS})))
@click.option("--size", type=click.Choice(["small", "big"]), default="small", show_default=True)
@click.option(
    "--index-url",
    default=OFFICIAL_INDEX_URL,
    show_default=True,
    help="Vosk's model list (a mirror's, where the official site is out of reach).",
)
def models_install(locale: str, size: str, index_url: str) -> None:
    """Download the official Vosk model for LOCALE, check its checksum, unpack it atomically."""
    settings: Settings = current_wiring().settings
    with click.progressbar(length=1, label=f"downloading the {size} {locale} model") as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        try:
            path = install_model(
                locale,
                size=size,
                models_dir=settings.models_dir,
                index_url=index_url,
                progress=progress,
            )
        except InstallError as error:
            raise click.ClickException(str(error)) from error
    click.echo(f"installed {locale} model at {path}")


@models_group.command("ensure")
@click.option(
    "--index-url",
    default=OFFICIAL_INDEX_URL,
    show_default=True,
    help="Vosk's model list (a mirror's, where the official site is out of reach).",
)
def models_ensure(index_url: str) -> None:
    """Install the small Mandarin and English models if they are missing (`make run` does
    this first); offline, say so in one line and carry on."""
    wiring = current_wiring()
    missing = wiring.models.without_model(OUT_OF_THE_BOX_LOCALES)
    if not missing:
        return
    # Every outcome exits 0: the hotline runs without these models (their reports wait for
    # a person to listen), so a failed download must not stop `make run`.
    with contextlib.ExitStack() as bars:

        def progress_for(locale: str, entry: IndexEntry) -> Callable[[int, int], None]:
            bars.close()  # the previous model's bar ends its line
            label = f"downloading {entry.name} ({entry.size / 1_000_000:.0f} MB)"
            bar = bars.enter_context(click.progressbar(length=entry.size, label=label))
            return lambda done, _total: bar.update(done - bar.pos)

        try:
            report = ensure_models(
                missing,
                models_dir=wiring.settings.models_dir,
                index_url=index_url,
                progress_for=progress_for,
            )
        except SiteUnreachableError as error:
            bars.close()
            click.echo(
                f"speech models for {' and '.join(missing)} not installed: offline ({error}); "
                "those reports go to the desk to be listened to",
                err=True,
            )
            return
        except InstallError as error:
            bars.close()
            click.echo(f"speech model not installed: {error}", err=True)
            return
    for locale in report.installed:
        click.echo(f"installed the {locale} speech model")


# simulate-call's clock: a minute of the call in a second of the wall's (the greeting, the
# prompts and a wait in the queue take their time, a sixtieth of it); and how long, in the
# call's time, a call may go on beyond its wait in the queue.
SIMULATION_SPEED = 60.0
SIMULATION_LIMIT = 1800.0


@click.command("simulate-call")
@with_appcontext
@click.option(
    "--wav",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="What the caller says when recording (a WAV file).",
)
@click.option(
    "--digits",
    default="",
    help="Keys pressed at each prompt that asks for keys, comma-separated; an empty item is "
    "no key. None (the default) records the report straight after the Mandarin greeting; "
    "3,1 in Korean; 9,NUMBER# hears a case's status; 0 asks for a person.",
)
@click.option(
    "--from",
    "from_number",
    default="+8613800138000",
    show_default=True,
    help="Caller ID ('anonymous' to withhold it).",
)
@click.option(
    "--url",
    "app_url",
    default=None,
    help="A running server to call (default: serve this app on a free local port).",
)
@click.option(
    "--streams-url",
    default=None,
    help="With --url: the running streams process (default: ws://127.0.0.1:$STREAMS_PORT).",
)
@click.option("--hangup", is_flag=True, help="Hang up while recording instead of pressing #.")
@click.option(
    "--operator", is_flag=True, help="Press 0 to end the recording (keeps it, rings a person)."
)
@click.option(
    "--callback-number",
    default=None,
    help="With --from anonymous: the number keyed when asked, after the report.",
)
@click.option(
    "--wait",
    default=20.0,
    show_default=True,
    help="Seconds to wait for the worker to store the recording.",
)
@click.option(
    "--queue-wait",
    default=120.0,
    show_default=True,
    help="Seconds (of the call's time) the caller waits for a person before hanging up.",
)
def simulate_call_command(
    wav: Path | None,
    digits: str,
    from_number: str,
    app_url: str | None,
    streams_url: str | None,
    hangup: bool,
    operator: bool,
    callback_number: str | None,
    wait: float,
    queue_wait: float,
) -> None:
    """Play a whole call against the app as Twilio would; no Twilio account needed.

    The call runs on a switchboard whose clock is `SIMULATION_SPEED` times faster than the
    wall's, so a caller who asks for a person waits in the queue (hearing their place) as on
    Twilio; nothing answers the seats' phones here, so they hang up after `--queue-wait`."""
    wiring = current_wiring()
    settings: Settings = wiring.settings
    inputs: list[Input] = [item.strip() or None for item in digits.split(",")]
    if wav is not None:
        # The recording is consumed at the <Record>, wherever it comes in the script.
        end = "hangup" if hangup else "0" if operator else "#"
        inputs.append(Speak(wav.read_bytes(), end=end))
    if callback_number is not None:
        inputs.append(callback_number.rstrip("#") + "#")

    server = None
    streams_server = None
    if app_url is None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the steps are printed below
        app = current_app._get_current_object()  # type: ignore[attr-defined]  # (werkzeug proxy)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        app_url = f"http://127.0.0.1:{server.server_port}"
        # Live transcripts need the Media Streams process too: this one, for the call.
        streams_server = StreamsServer(wiring).start()
        streams_url = streams_server.url
    elif streams_url is None:
        streams_url = f"ws://127.0.0.1:{settings.streams_port}"

    with RecordingServer(
        account_sid=settings.twilio_account_sid, auth_token=settings.twilio_auth_token
    ) as recordings:
        emulator = TwilioEmulator(
            public_base_url=settings.public_base_url,
            app_url=app_url,
            auth_token=settings.twilio_auth_token,
            account_sid=settings.twilio_account_sid,
            recordings=recordings,
            from_number=from_number,
            on_step=lambda step: click.echo(_describe(step)),
            # As the number is configured (README, "Connect a real Twilio number").
            status_callback="/ivr/call-status",
            public_stream_url=settings.public_stream_url,
            streams_url=streams_url,
        )
        switchboard = Switchboard(emulator, clock=RealClock(speed=SIMULATION_SPEED))
        try:
            leg = switchboard.call(
                Caller(inputs=inputs, from_number=from_number, hang_up_after=queue_wait)
            )
            if not switchboard.wait_idle(timeout=queue_wait + SIMULATION_LIMIT):
                raise click.ClickException("the call did not end: is the IVR looping?")
            log = leg.log
        except EmulatorError as error:
            raise click.ClickException(f"the call went wrong: {error}") from error
        finally:
            if server is not None:
                server.shutdown()
            if streams_server is not None:
                # Closes the sockets and waits for their transcripts: Kaldi aborts the process
                # if it exits in the middle of a decode.
                streams_server.stop()
        click.echo(f"call ended ({log.ended_by}) after {len(log.steps)} requests")
        number = _case_number_of(wiring, log.call_sid)
        if number is None:
            click.echo("no case was opened")
            return
        click.echo(f"case number: {number}")
        _wait_for_recording(wiring, number, wait)


def _describe(step: Step) -> str:
    path = step.url.split("://", 1)[-1].split("/", 1)[-1]
    keys = {
        k: v
        for k, v in step.params.items()
        if k in ("Digits", "RecordingDuration", "DialCallStatus")
    }
    lines = [f"→ POST /{path} {keys if keys else ''} ← {step.status_code}"]
    lines += [f"    🔊 {spoken.text}" for spoken in step.said]
    return "\n".join(lines)


def _case_number_of(wiring: Wiring, call_sid: str) -> str | None:
    with wiring.database.session() as session:
        return session.scalars(
            select(Case.number).join(Call, Case.call_id == Call.id).where(Call.call_sid == call_sid)
        ).first()


def _wait_for_recording(wiring: Wiring, number: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    status = RecordingStatus.PENDING
    click.echo("waiting for the worker to fetch the recording ...", nl=False)
    while time.monotonic() < deadline:
        with wiring.database.session() as session:
            case = queries.get_case(session, number=number)
            status = case.recordings[0].status if case.recordings else RecordingStatus.PENDING
        if status != RecordingStatus.PENDING:
            break
        click.echo(".", nl=False)
        time.sleep(0.5)
    click.echo(f" {status}")
    if status == RecordingStatus.PENDING:
        click.echo(
            "the recording is still pending: is the worker running? (`make run` starts it)",
            err=True,
        )
    click.echo(f"see it with: flask --app hotline case show {number}")
    sys.stdout.flush()


@click.group("department", cls=AppGroup)
def department_group() -> None:
    """How departments receive their cases."""


@department_group.command("set")
@click.argument("code")
@click.option("--webhook-url", help="HTTPS endpoint for signed pushes ('' clears it).")
@click.option("--webhook-secret", help="Secret for the X-Hotline-Signature HMAC.")
@click.option("--email", help="Address for e-mailed cases ('' clears it).")
@click.option("--sms", "sms_number", help="Duty officer's mobile for SMS alerts ('' clears it).")
@click.option("--new-api-key", is_flag=True, help="Issue a new API key (printed once).")
def department_set(
    code: str,
    webhook_url: str | None,
    webhook_secret: str | None,
    email: str | None,
    sms_number: str | None,
    new_api_key: bool,
) -> None:
    """Set how department CODE receives its cases; options not given stay as they are."""
    wiring = current_wiring()
    try:
        with wiring.database.session() as session, session.begin():
            department = staff.set_department_channels(
                session,
                code=code,
                webhook_url=webhook_url,
                webhook_secret=webhook_secret,
                email=email,
                sms_number=sms_number,
            )
            key = staff.issue_api_key(session, code=code) if new_api_key else None
            channels = {str(channel): address for channel, address in department.channels().items()}
    except InvalidInputError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps({"department": code, "channels": channels}, ensure_ascii=False))
    if key:
        click.echo(f"API key (shown once; store it in the department's system): {key}")


@click.group("user", cls=AppGroup)
def user_group() -> None:
    """Staff accounts."""


@user_group.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["dispatcher", "department", "supervisor", "operator", "admin"]),
    required=True,
)
@click.option("--department", "department_code", help="The department, for department staff.")
def user_add(username: str, role: str, department_code: str | None) -> None:
    """Add a staff account; the password is read from standard input."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    wiring = current_wiring()
    try:
        with wiring.database.session() as session, session.begin():
            staff.add_user(
                session,
                username=username,
                password=password,
                role=role,
                department_code=department_code,
            )
    except InvalidInputError as error:
        raise click.ClickException(str(error)) from error
    suffix = f" of {department_code}" if department_code else ""
    click.echo(f"user {username} added: {role}{suffix}")


@click.group("queue", cls=AppGroup)
def queue_group() -> None:
    """The queue for a person."""


@queue_group.command("show")
def queue_show() -> None:
    """Print the calls waiting for a person as JSON, longest-waiting first."""
    wiring = current_wiring()
    now = utcnow()
    with wiring.database.session() as session, database_set_up():
        waiting = [
            {
                "call_sid": entry.call_sid,
                # Masked as everywhere staff need not dial the caller; the number to call
                # back is in `callbacks list`.
                "caller": mask_number(entry.caller_number),
                "locale": entry.locale,
                "reason": entry.reason,
                "seconds_waiting": max(0, int((now - entry.enqueued_at).total_seconds())),
                # Twilio's queue is first come, first served: the order of our records is its.
                "position": position,
            }
            for position, entry in enumerate(seats.waiting(session), start=1)
        ]
    click.echo(json.dumps(waiting, ensure_ascii=False, indent=2))


@click.group("callbacks", cls=AppGroup)
def callbacks_group() -> None:
    """Callers to call back."""


@callbacks_group.command("list")
def callbacks_list() -> None:
    """Print the open callback tasks as JSON, oldest first, each with the number to call."""
    wiring = current_wiring()
    with wiring.database.session() as session, database_set_up():
        tasks = [
            {
                "id": task.id,
                "caller": task.caller_number,
                "locale": task.locale,
                "reason": task.reason,
                "created_at": task.created_at.isoformat(),
                "attempts": task.attempts,
            }
            for task in callbacks.open_callbacks(session)
        ]
    click.echo(json.dumps(tasks, ensure_ascii=False, indent=2))


@click.group("open311", cls=AppGroup)
def open311_group() -> None:
    """Open311 GeoReport v2 clients."""


@open311_group.group("key")
def open311_key_group() -> None:
    """The API keys Open311 clients post with."""


@open311_key_group.command("add")
@click.argument("name")
def open311_key_add(name: str) -> None:
    """Make a key for client NAME and print it, last and once (only its hash is kept)."""
    wiring = current_wiring()
    try:
        with database_set_up(), wiring.database.session() as session, session.begin():
            key = open311.make_key(session, name=name)
    except InvalidInputError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Open311 key for {name} (shown once; store it in the client's settings):")
    click.echo(key)


@open311_key_group.command("revoke")
@click.argument("name")
def open311_key_revoke(name: str) -> None:
    """Stop client NAME's key working at once."""
    wiring = current_wiring()
    try:
        with database_set_up(), wiring.database.session() as session, session.begin():
            open311.revoke_key(session, name=name)
    except InvalidInputError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Open311 key of {name} revoked")


@click.command("backup")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def backup_command(folder: Path) -> None:
    """Copy the database, recordings and photos into FOLDER (a new or empty folder), with a
    manifest.json to check them by; the service may keep running meanwhile."""
    settings: Settings = current_wiring().settings
    try:
        backup.sqlite_path(settings)
        files = backup.files_to_copy(settings)
        with click.progressbar(length=len(files), label="copying recordings and photos") as bar:
            manifest = backup.back_up(settings, target=folder, progress=bar.update)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from error
    rows = ", ".join(f"{count} {table}" for table, count in manifest["rows"].items())
    click.echo(f"backup written to {folder}: {rows}; {len(manifest['files']) - 1} files")


@click.command("restore")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds cases.")
@with_appcontext
def restore_command(folder: Path, force: bool) -> None:
    """Bring back a backup made by `backup`: check every file against its manifest, then
    replace the database, recordings and photos. Stop the service first."""
    settings: Settings = current_wiring().settings
    try:
        manifest = backup.read_manifest(folder)
        with click.progressbar(
            length=len(manifest["files"]) - 1, label="restoring recordings and photos"
        ) as bar:
            backup.restore(settings, source=folder, force=force, progress=bar.update)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"restored the backup taken at {manifest['taken_at']} from {folder}")
    if manifest["revision"] != backup.newest_revision():
        click.echo("the backup is from an older version: run `flask --app hotline init` next")
