"""A model's recognizers, kept for reuse: one per thread that decodes, reset between calls.

A new Vosk recognizer builds its share of the decoding graph as it decodes, so its first
seconds cost several times what a used one costs (on the small Korean model, about 0.4 against
0.07 CPU-seconds a second of speech). Vosk advises against sharing a recognizer between
threads, so each thread keeps its own: made in that thread, used only there, `Reset()` when a
call ends. A recognizer in use holds its thread's slot; another call on that thread meanwhile
gets a fresh one, which is not kept.

A reset recognizer's clock runs on: Vosk times a word from the first sample its recognizer ever
heard. A lease says how much audio came before its call (`offset_seconds`), so that word times
can be made the call's own again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import vosk

if TYPE_CHECKING:
    from transcription.models import LoadedModel


def new_recognizer(model: LoadedModel) -> Any:
    """A fresh recognizer for the model, with word times; not kept by any pool."""
    recognizer = vosk.KaldiRecognizer(model.model, model.sample_rate)
    recognizer.SetWords(True)
    return recognizer


class _Slot:
    """One thread's kept recognizer for one model, and whether a call holds it."""

    def __init__(self) -> None:
        self.recognizer: Any = None
        self.taken = False
        self.samples_heard = 0  # by the recognizer, in all its calls so far
        self.thread_id = threading.get_ident()


class Lease:
    """A recognizer taken for one call; `give_back` once the call is done with it."""

    def __init__(self, recognizer: Any, slot: _Slot | None, *, sample_rate: int) -> None:
        self.recognizer = recognizer
        self._slot = slot
        # Where this call starts on the recognizer's clock, which its word times are read on.
        self.offset_seconds = slot.samples_heard / sample_rate if slot is not None else 0.0

    def accept_waveform(self, pcm: bytes) -> bool:
        """Feed 16-bit mono PCM at the model's rate; True at an endpoint (take `Result()`)."""
        if self._slot is not None:
            self._slot.samples_heard += len(pcm) // 2
        return bool(self.recognizer.AcceptWaveform(pcm))

    @property
    def kept(self) -> bool:
        """Whether this is its thread's kept recognizer (else a spare, dropped after the call)."""
        return self._slot is not None

    def give_back(self) -> None:
        """Reset the recognizer for its thread's next call; a spare is simply dropped."""
        slot, self._slot = self._slot, None
        if slot is None:
            return
        if slot.thread_id == threading.get_ident():
            self.recognizer.Reset()
            slot.taken = False
        else:
            # Ended on another thread: not reused, so that no thread touches another's; the
            # owner makes a new one for its next call.
            slot.recognizer, slot.taken, slot.samples_heard = None, False, 0


class RecognizerPool:
    """One model's recognizers: each thread that decodes with it keeps one for reuse."""

    def __init__(self) -> None:
        self._local = threading.local()

    def take(self, model: LoadedModel) -> Lease:
        """A recognizer for one call on this thread: its kept one, reset, if free."""
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            slot = self._local.slot = _Slot()
        if slot.taken:
            return Lease(new_recognizer(model), None, sample_rate=model.sample_rate)
        if slot.recognizer is None:
            slot.recognizer = new_recognizer(model)  # made in the thread that will use it
            slot.samples_heard = 0
        slot.taken = True
        return Lease(slot.recognizer, slot, sample_rate=model.sample_rate)
