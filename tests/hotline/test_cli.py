"""The commands a newcomer runs, as real subprocesses: init, simulate-call, case show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from cases.models import CallbackTask, Seat, SeatStatus, utcnow
from hotline.config import PROJECT_ROOT
from hotline.wiring import wiring_of
from tests.conftest import AUDIO
from tests.support.calls import fresh_mobile_number
from tests.support.seats import SeatAt


def flask(
    environ: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "hotline", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_init_is_idempotent(environ: dict[str, str], app: Flask) -> None:
    for _ in range(2):
        result = flask(environ, "init")
        assert result.returncode == 0, result.stderr
        assert "15 departments, 18 categories" in result.stdout


@pytest.mark.usefixtures("celery_worker")
def test_simulate_call_then_case_show(environ: dict[str, str], app: Flask) -> None:
    wav = AUDIO / "ko_streetlight.wav"
    call = flask(environ, "simulate-call", "--wav", str(wav), "--digits", "3,1", "--wait", "60")
    assert call.returncode == 0, call.stdout + call.stderr
    assert "/ivr/voice" in call.stdout and "/ivr/recorded" in call.stdout
    number = next(
        line.split(":", 1)[1].strip()
        for line in call.stdout.splitlines()
        if line.startswith("case number:")
    )

    shown = flask(environ, "case", "show", number)
    assert shown.returncode == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert case["number"] == number and case["locale"] == "ko-KR"
    assert case["status"] in ("open", "triage", "assigned")  # the worker may have routed it
    (recording,) = case["recordings"]
    assert recording["status"] == "stored"
    assert Path(recording["file"]).read_bytes() == wav.read_bytes()
    assert case["call"]["call_sid"].startswith("CA") and case["call"]["from"] == "+8613800138000"
    kinds = [event["kind"] for event in case["events"]]
    assert kinds[0] == "opened" and "recording_stored" in kinds


def case_number_in(output: str) -> str:
    return next(
        line.split(":", 1)[1].strip()
        for line in output.splitlines()
        if line.startswith("case number:")
    )


@pytest.mark.usefixtures("celery_worker")
def test_simulate_call_with_no_keys_records_mandarin_and_9_reads_its_status(
    environ: dict[str, str], app: Flask
) -> None:
    wav = AUDIO / "zh_manhole.wav"
    call = flask(environ, "simulate-call", "--wav", str(wav), "--wait", "60")
    assert call.returncode == 0, call.stdout + call.stderr
    posts = [line.split()[2] for line in call.stdout.splitlines() if line.startswith("→ POST")]
    # Straight from the greeting to the recording: no menu between.
    assert [post.split("?")[0] for post in posts[:3]] == [
        "/ivr/voice",
        "/ivr/report/start",
        "/ivr/recorded",
    ]
    number = case_number_in(call.stdout)
    case = json.loads(flask(environ, "case", "show", number).stdout)
    assert case["locale"] == "zh-CN"

    status = flask(environ, "simulate-call", "--digits", f"9,{number}#")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "/ivr/status/lookup" in status.stdout
    assert "工单 " + "，".join("零幺二三四五六七八九"[int(d)] for d in number) in status.stdout
    assert "no case was opened" in status.stdout


@pytest.mark.usefixtures("quiet_queue")
def test_simulate_call_0_asks_for_a_person(environ: dict[str, str], app: Flask) -> None:
    call = flask(environ, "simulate-call", "--digits", "0")
    assert call.returncode == 0, call.stdout + call.stderr
    assert "现在没有话务员可以接听" in call.stdout  # nobody has a seat: a callback is offered
    assert "/ivr/person" in call.stdout  # no operator has a seat here: the offer follows
    assert "no case was opened" in call.stdout


def test_case_show_of_an_unknown_number_fails_clearly(environ: dict[str, str], app: Flask) -> None:
    result = flask(environ, "case", "show", "000000000")
    assert result.returncode != 0
    assert "no case with number '000000000'" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "no format chunk"),
        ((AUDIO / "ko_water.wav").read_bytes()[:3000], "truncated"),
        (b"\xff\xfb\x90\x64" + bytes(2000), "not a WAV"),
    ],
    ids=["zero-length", "corrupt", "truncated", "wrong-type"],
)
def test_transcribe_rejects_bad_audio_clearly(
    environ: dict[str, str],
    app: Flask,
    tmp_path: Path,
    content: bytes,
    message: str,
) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    result = flask(environ, "transcribe", str(bad), "--locale", "ko-KR")
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_transcribe_prints_text_words_and_seconds(environ: dict[str, str], app: Flask) -> None:
    result = flask(environ, "transcribe", str(AUDIO / "ko_water.wav"), "--locale", "ko-KR")
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["text"] and transcript["words"][0]["word"]
    assert transcript["seconds"] == pytest.approx(5.0, abs=0.05)
    assert transcript["model"] == "vosk-model-small-ko-0.22"


def test_transcribe_without_a_model_says_how_to_get_one(
    environ: dict[str, str], app: Flask
) -> None:
    result = flask(environ, "transcribe", str(AUDIO / "zh_manhole.wav"), "--locale", "zh-CN")
    assert result.returncode != 0
    assert "flask --app hotline models install zh-CN" in result.stderr


def test_models_install_shows_progress_and_unpacks(
    environ: dict[str, str], app: Flask, tmp_path: Path
) -> None:
    from tests.transcription.test_install import ModelSite, model_zip

    archive = model_zip()
    with ModelSite() as site:
        index = site.publish(archive)
        env = {**environ, "HOTLINE_INSTANCE_PATH": str(tmp_path)}
        result = flask(env, "models", "install", "zh-CN", "--index-url", index)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "downloading the small zh-CN model" in result.stdout
    assert (tmp_path / "models" / "zh-CN" / "am" / "final.mdl").exists()


@pytest.mark.parametrize("command", [("ask", "身份证丢了怎么补办"), ("case", "show", "000000000")])
def test_a_command_on_a_database_not_set_up_says_to_run_init(
    environ: dict[str, str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    empty = {**environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite'}"}
    result = flask(empty, *command)
    assert result.returncode == 1
    assert "the database is not set up yet: run `flask --app hotline init` first" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("quiet_queue")
def test_simulate_call_0_waits_in_the_queue_hearing_its_place_then_is_owed_a_callback(
    environ: dict[str, str], app: Flask, operator_seat: Callable[..., SeatAt]
) -> None:
    # On duty, but writing up a call: the caller waits, and nobody answers here.
    seat = operator_seat(SeatStatus.BUSY)
    with wiring_of(app).database.session() as session, session.begin():
        row = session.get_one(Seat, seat.id)
        row.status, row.wrap_up_until = SeatStatus.WRAP_UP, utcnow() + timedelta(hours=1)
    caller = fresh_mobile_number()
    call = flask(environ, "simulate-call", "--digits", "0", "--from", caller, "--queue-wait", "75")
    assert call.returncode == 0, call.stdout + call.stderr
    assert "/ivr/queue/wait" in call.stdout
    assert "您现在排在第1位" in call.stdout
    assert "call ended (caller-hangup)" in call.stdout
    with wiring_of(app).database.session() as session:
        task = session.scalars(
            select(CallbackTask).where(CallbackTask.caller_number == caller)
        ).one()
        assert (task.reason, task.status) == ("hung_up_in_queue", "open")
