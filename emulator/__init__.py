"""A Twilio emulator for `simulate-call` and the tests: voice calls played over real HTTP and
signed like Twilio's, recordings served as Twilio's media store serves them, and Media Streams
over real WebSockets. It follows Twilio's documented behaviour, not the app's convenience."""

from emulator.protocol import API_VERSION, EmulatorError
from emulator.recordings import RecordingServer
from emulator.streams import FRAME_BYTES, MediaStream
from emulator.voice import CallLog, DialOutcome, Input, Speak, Spoken, Step, TwilioEmulator

__all__ = [
    "API_VERSION",
    "FRAME_BYTES",
    "CallLog",
    "DialOutcome",
    "EmulatorError",
    "Input",
    "MediaStream",
    "RecordingServer",
    "Speak",
    "Spoken",
    "Step",
    "TwilioEmulator",
]
