"""Fetching a recording from Twilio and storing it: size cap, WAV check (stored atomically by
`cases.attachments.write_atomically`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import requests

from transcription.audio import AudioError, WavInfo, inspect_wav


class RecordingNotReadyError(Exception):
    """Twilio does not serve the recording yet (404), or answered with a passing failure;
    `status` is Twilio's HTTP status (None: Twilio could not be reached)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RecordingRejectedError(Exception):
    """What Twilio served is not a usable recording; `data` keeps whatever arrived."""

    def __init__(self, reason: str, data: bytes) -> None:
        super().__init__(reason)
        self.data = data


@dataclass(frozen=True)
class FetchedRecording:
    """A recording's bytes and what its header says."""

    data: bytes
    info: WavInfo

    @property
    def sha256(self) -> str:
        """The content hash, stored so a copy can be checked later."""
        return hashlib.sha256(self.data).hexdigest()


def download(
    url: str, *, auth: tuple[str, str], max_bytes: int, timeout: float | None = None
) -> FetchedRecording:
    """GET the recording as WAV with Basic auth; raise NotReady to retry, Rejected to give up.
    `timeout` bounds connecting and each read (a webhook listening to it cannot wait long)."""
    try:
        response = requests.get(
            url, auth=auth, stream=True, timeout=(5, 30) if timeout is None else timeout
        )
    except requests.RequestException as error:
        raise RecordingNotReadyError(f"could not reach Twilio: {error}") from error
    with response:
        if response.status_code != 200:
            # 404 is normal for a few seconds after the call; 5xx and 429 pass too.
            raise RecordingNotReadyError(
                f"Twilio answered HTTP {response.status_code}", response.status_code
            )
        declared = int(response.headers.get("Content-Length") or 0)
        if declared > max_bytes:
            raise RecordingRejectedError(f"recording of {declared} bytes exceeds the cap", b"")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise RecordingRejectedError(
                    f"recording exceeds the cap of {max_bytes} bytes", b"".join(chunks)
                )
            chunks.append(chunk)
    data = b"".join(chunks)
    try:
        info = inspect_wav(data)
    except AudioError as error:
        raise RecordingRejectedError(str(error), data) from error
    return FetchedRecording(data=data, info=info)
