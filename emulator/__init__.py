"""A Twilio emulator for `simulate-call` and the tests: voice calls played over real HTTP and
signed like Twilio's, recordings served as Twilio's media store serves them, Media Streams
over real WebSockets, and a switchboard for many calls at once (queues, calls placed through
the REST API, the phones they ring) on a real or virtual clock. It follows Twilio's
documented behaviour, not the app's convenience."""

from emulator.clock import Clock, RealClock, VirtualClock
from emulator.protocol import API_VERSION, EmulatorError
from emulator.queues import CallQueue
from emulator.recordings import RecordingServer
from emulator.streams import FRAME_BYTES, MediaStream
from emulator.switchboard import Caller, Leg, Phone, Switchboard
from emulator.voice import CallLog, DialOutcome, Input, Speak, Spoken, Step, TwilioEmulator

__all__ = [
    "API_VERSION",
    "FRAME_BYTES",
    "CallLog",
    "CallQueue",
    "Caller",
    "Clock",
    "DialOutcome",
    "EmulatorError",
    "Input",
    "Leg",
    "MediaStream",
    "Phone",
    "RealClock",
    "RecordingServer",
    "Speak",
    "Spoken",
    "Step",
    "Switchboard",
    "TwilioEmulator",
    "VirtualClock",
]
