"""Twilio's call queues: <Enqueue> joins one, <Dial><Queue> takes its longest-waiting caller
(first come, first served; nobody twice), <Leave> or a hang-up takes a caller out."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from emulator.clock import Clock, Signal
from emulator.protocol import new_sid

# Twilio's documented default maximum size of a queue (changeable through the REST API).
DEFAULT_MAX_SIZE = 1000


@dataclass
class Bridge:
    """Two calls put through to each other by <Dial><Queue>."""

    caller_sid: str  # the dequeued call
    dialer_sid: str  # the call whose <Dial><Queue> took it
    whisper_url: str | None  # <Queue url>: played on the caller's leg before connecting
    connected: Signal  # set once the whisper is over and the two talk (or the caller is gone)
    ended: Signal  # set when either party hangs up
    connected_at: float | None = None
    ended_at: float | None = None
    ended_by: str = ""  # "caller" | "dialer"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def end(self, *, by: str, at: float) -> bool:
        """The first party to hang up ends the bridge; returns whether this call did."""
        with self._lock:
            if self.ended_by:
                return False
            self.ended_by, self.ended_at = by, at
        self.connected.set()  # a caller gone during the whisper frees the dialer too
        self.ended.set()
        return True

    @property
    def duration(self) -> int:
        """Whole seconds the two were connected."""
        if self.connected_at is None or self.ended_at is None:
            return 0
        return max(0, round(self.ended_at - self.connected_at))


@dataclass
class Member:
    """A call waiting in a queue."""

    call_sid: str
    joined_at: float
    dequeued: Signal  # set when the call leaves the queue by any road
    state: str = "waiting"  # "waiting" | "dequeued" | "hangup" | "leave"
    left_at: float | None = None
    bridge: Bridge | None = None

    @property
    def queue_time(self) -> int:
        """Whole seconds spent in the queue (so far, or until it left)."""
        return max(0, round((self.left_at or self.joined_at) - self.joined_at))


@dataclass
class _Dialer:
    call_sid: str
    whisper_url: str | None
    woken: Signal
    member: Member | None = None


class CallQueue:
    """One named queue: FIFO members, and the <Dial><Queue>s waiting for someone to join."""

    def __init__(self, name: str, *, clock: Clock, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.name = name
        self.sid = new_sid("QU")
        self.max_size = max_size
        self._clock = clock
        self._members: list[Member] = []
        self._dialers: deque[_Dialer] = deque()
        self._lock = threading.Lock()
        self.dequeued: list[Member] = []  # in dequeue order: who was put through, and when

    def join(self, call_sid: str) -> Member | None:
        """Put a call at the back of the queue; None when the queue is full."""
        now = self._clock.now()
        with self._lock:
            if len(self._members) >= self.max_size:
                return None
            member = Member(call_sid, now, self._clock.signal())
            self._members.append(member)
            if self._dialers:  # a <Dial><Queue> was waiting on an empty queue
                dialer = self._dialers.popleft()
                dialer.member = self._take(dialer.call_sid, dialer.whisper_url, now)
                dialer.woken.set()
            return member

    def take(self, *, dialer_sid: str, whisper_url: str | None, timeout: float) -> Member | None:
        """<Dial><Queue>: the longest-waiting caller, waiting up to `timeout` clock seconds for
        one to join when the queue is empty; None if nobody came."""
        with self._lock:
            if self._members:
                return self._take(dialer_sid, whisper_url, self._clock.now())
            dialer = _Dialer(dialer_sid, whisper_url, self._clock.signal())
            self._dialers.append(dialer)
        self._clock.wait(dialer.woken, timeout)
        with self._lock:
            if dialer.member is None:
                self._dialers.remove(dialer)
            return dialer.member

    def _take(self, dialer_sid: str, whisper_url: str | None, now: float) -> Member:
        member = self._members.pop(0)
        member.state, member.left_at = "dequeued", now
        member.bridge = Bridge(
            caller_sid=member.call_sid,
            dialer_sid=dialer_sid,
            whisper_url=whisper_url,
            connected=self._clock.signal(),
            ended=self._clock.signal(),
        )
        self.dequeued.append(member)
        member.dequeued.set()
        return member

    def leave(self, member: Member, *, reason: str) -> bool:
        """Take a waiting caller out ("leave", "hangup"); False if a dial took them first."""
        with self._lock:
            if member.state != "waiting":
                return False
            self._members.remove(member)
            member.state, member.left_at = reason, self._clock.now()
        member.dequeued.set()
        return True

    def wait_params(self, member: Member) -> dict[str, str]:
        """What Twilio adds to a waitUrl request: position, times and sizes."""
        now = self._clock.now()
        with self._lock:
            members = list(self._members)
        position = members.index(member) + 1 if member in members else 0
        waits = [now - other.joined_at for other in members]
        return {
            "QueueSid": self.sid,
            "QueuePosition": str(position),
            "QueueTime": str(max(0, round(now - member.joined_at))),
            # The average wait of the calls now in the queue, as Twilio computes it per request
            "AvgQueueTime": str(round(sum(waits) / len(waits)) if waits else 0),
            "CurrentQueueSize": str(len(members)),
            "MaxQueueSize": str(self.max_size),
        }

    @property
    def size(self) -> int:
        """How many calls wait now."""
        with self._lock:
            return len(self._members)
