"""A Twilio Media Stream: the caller's audio, live, over a signed WebSocket."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.sync.client import connect

from emulator.protocol import new_sid
from transcription.audio import decode_wav, pcm16_to_mulaw, resample

FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law, as Twilio sends it
# How often (in frames: 100 ms) a caller still speaking looks for a REST update of the call.
UPDATE_CHECK_FRAMES = 5


class MediaStream:
    """One Twilio Media Stream: a signed WebSocket carrying the caller's audio as JSON frames."""

    def __init__(
        self,
        *,
        url: str,
        transport_url: str,
        signature: str,
        start: dict[str, Any],
        tracks: tuple[str, ...] = ("inbound",),
    ) -> None:
        self.url = url
        self.stream_sid = new_sid("MZ")
        self.sequence = 0
        self.frames_sent = 0
        self.closed = False
        # Once a call is put through, both parties may speak into it from their own threads
        self._sending = threading.Lock()
        self.socket = connect(
            transport_url,
            additional_headers={"X-Twilio-Signature": signature},
            compression=None,
            open_timeout=15,
            proxy=None,  # the app is reached directly, never through the environment's proxy
            legacy=True,  # a connection held for the whole call, not a `with` block
        )
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self._send(
            {
                "event": "start",
                "start": {
                    **start,
                    "streamSid": self.stream_sid,
                    "tracks": list(tracks),
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": self.stream_sid,
            }
        )

    def _send(self, message: dict[str, Any]) -> None:
        with self._sending:
            self.sequence += 1
            self.socket.send(json.dumps({"sequenceNumber": str(self.sequence), **message}))

    def send_audio(
        self,
        wav: bytes,
        *,
        speed: float | None,
        drop_halfway: bool = False,
        interrupted: Callable[[], bool] | None = None,
        track: str = "inbound",
    ) -> bool:
        """Send the WAV's audio as 20 ms mu-law frames; `speed` 1.0 is real time, None as fast
        as the socket takes it. Stops early, and returns True, once `interrupted()` says the
        call was taken elsewhere (a REST update cuts the caller's <Record> short)."""
        audio = decode_wav(wav)
        mulaw = pcm16_to_mulaw(resample(audio.samples, audio.sample_rate, 8000))
        frames = [mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES)]
        started = time.monotonic()
        for index, frame in enumerate(frames):
            if self.closed:  # the call ended while this party was still speaking
                return False
            if interrupted is not None and index % UPDATE_CHECK_FRAMES == 0 and interrupted():
                return True
            if drop_halfway and index == len(frames) // 2:
                self.socket.close()  # a network failure: no stop message
                self.closed = True
                return False
            self._send(
                {
                    "event": "media",
                    "streamSid": self.stream_sid,
                    "media": {
                        "track": track,
                        "chunk": str(self.frames_sent + 1),
                        "timestamp": str(self.frames_sent * 20),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
            )
            self.frames_sent += 1
            if speed:  # keep to the wall clock, as a live call does
                delay = started + (index + 1) * 0.02 / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        return False

    def stop(self, call_sid: str, account_sid: str) -> None:
        """End the stream the way Twilio does: a `stop` message, then close."""
        if self.closed:
            return
        self.closed = True  # first, so the other party stops speaking into it
        self._send(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": account_sid, "callSid": call_sid},
            }
        )
        self.socket.close()
        self.closed = True
