"""Time for the switchboard: real seconds (optionally sped up) for tests, or virtual seconds for a
benchmark that plays an hour of calls in moments. Every call runs on a thread the clock spawns,
and waits only through the clock, so the same call logic runs in either."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

# Float sums of virtual deadlines may miss an instant by rounding: closer than this is "reached".
EPSILON = 1e-6


class Signal(Protocol):
    """A one-shot flag a call waits on through its clock (dequeued, bridged, hung up...)."""

    def set(self) -> None:
        """Raise the flag and wake whoever waits on it."""

    def is_set(self) -> bool:
        """Whether the flag is raised."""


class Clock(Protocol):
    """What the switchboard asks of time."""

    def now(self) -> float:
        """Seconds since the clock started (scaled or virtual)."""

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of clock time pass."""

    def wait(self, signal: Signal | threading.Event, timeout: float | None) -> bool:
        """Wait until the signal is set (True) or `timeout` clock seconds pass (False)."""

    def signal(self) -> Signal:
        """A new, unset signal this clock can wait on."""

    def spawn(self, target: Callable[[], None], *, name: str) -> threading.Thread:
        """Run `target` on a new daemon thread that takes part in this clock's time."""


class _EventSignal:
    def __init__(self) -> None:
        self.event = threading.Event()

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


class RealClock:
    """Wall-clock time, `speed` times faster: at speed 10 a 25 s <Pause> takes 2.5 s."""

    def __init__(self, *, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = time.monotonic()

    def now(self) -> float:
        """Seconds since the clock started, scaled by speed."""
        return (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of clock time (seconds / speed of wall time)."""
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wait(self, signal: Signal | threading.Event, timeout: float | None) -> bool:
        """Wait for the signal (or a plain threading.Event) at most `timeout` clock seconds."""
        event = signal if isinstance(signal, threading.Event) else _event_of(signal)
        if timeout is None:
            return event.wait()
        return event.wait(max(timeout, 0.0) / self.speed)

    def signal(self) -> Signal:
        """A new signal backed by a threading.Event."""
        return _EventSignal()

    def spawn(self, target: Callable[[], None], *, name: str) -> threading.Thread:
        """Start `target` on a daemon thread."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread


def _event_of(signal: Signal) -> threading.Event:
    if not isinstance(signal, _EventSignal):
        raise TypeError(f"RealClock can't wait on {signal!r}: make signals with clock.signal()")
    return signal.event


class _Waiter:
    __slots__ = ("by_signal", "woken")

    def __init__(self) -> None:
        self.woken = False
        self.by_signal = False


class _VirtualSignal:
    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._set = False
        self.waiters: list[_Waiter] = []

    def set(self) -> None:
        self._clock._raise(self)

    def is_set(self) -> bool:
        return self._set


class VirtualClock:
    """Discrete-event time. Each thread the clock spawns (and the one that made it) is a
    participant; time stands still while any participant runs (an HTTP request, say) and jumps
    to the next deadline once all of them wait. `on_advance(t)` is called at each jump, while
    every participant waits, so a benchmark can move the app's clock along (time_machine)."""

    # A threading.Event set from outside the clock can't wake a virtual sleeper: it is polled.
    EVENT_POLL_SECONDS = 0.5

    def __init__(
        self, *, start: float = 0.0, on_advance: Callable[[float], None] | None = None
    ) -> None:
        self._condition = threading.Condition()
        self._now = start
        self._running = 1  # the thread that made the clock takes part until it waits
        self._timers: list[tuple[float, int, _Waiter]] = []
        self._order = itertools.count()
        self.on_advance = on_advance
        self.advances = 0

    def now(self) -> float:
        """Virtual seconds."""
        with self._condition:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Wait until `seconds` of virtual time have passed."""
        self._block(None, seconds)

    def wait(self, signal: Signal | threading.Event, timeout: float | None) -> bool:
        """Wait until the signal is set or `timeout` virtual seconds pass."""
        if isinstance(signal, threading.Event):
            deadline = None if timeout is None else self.now() + timeout
            while not signal.is_set():
                left = None if deadline is None else deadline - self.now()
                if left is not None and left <= EPSILON:
                    return False
                step = self.EVENT_POLL_SECONDS
                self._block(None, step if left is None else min(step, left))
            return True
        if not isinstance(signal, _VirtualSignal) or signal._clock is not self:
            raise TypeError(f"VirtualClock can't wait on {signal!r}: use clock.signal()")
        return self._block(signal, timeout)

    def signal(self) -> Signal:
        """A new signal of this clock."""
        return _VirtualSignal(self)

    def spawn(self, target: Callable[[], None], *, name: str) -> threading.Thread:
        """Start `target` on a daemon thread that counts as a participant until it returns."""

        def run() -> None:
            try:
                target()
            finally:
                with self._condition:
                    self._running -= 1
                    self._advance_while_idle()

        with self._condition:
            self._running += 1
        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def _block(self, signal: _VirtualSignal | None, timeout: float | None) -> bool:
        with self._condition:
            if signal is not None and signal._set:
                return True
            if timeout is not None and timeout <= 0:
                return False
            waiter = _Waiter()
            if timeout is not None:
                entry = (self._now + timeout, next(self._order), waiter)
                heapq.heappush(self._timers, entry)
            if signal is not None:
                signal.waiters.append(waiter)
            self._running -= 1
            self._advance_while_idle()
            while not waiter.woken:
                self._condition.wait()
            return waiter.by_signal

    def _wake(self, waiter: _Waiter, *, by_signal: bool) -> None:
        if not waiter.woken:
            waiter.woken = True
            waiter.by_signal = by_signal
            self._running += 1
            self._condition.notify_all()

    def _raise(self, signal: _VirtualSignal) -> None:
        with self._condition:
            signal._set = True
            for waiter in signal.waiters:
                self._wake(waiter, by_signal=True)
            signal.waiters.clear()

    def _advance_while_idle(self) -> None:
        # Called with the lock held. Everyone waits: jump to the earliest deadline and wake all
        # who wait for it. With no deadline left nothing can ever happen; the waiters stay put.
        while self._running == 0:
            while self._timers and self._timers[0][2].woken:
                heapq.heappop(self._timers)
            if not self._timers:
                return
            moment = self._timers[0][0]
            if moment > self._now:
                self._now = moment
                self.advances += 1
                if self.on_advance is not None:
                    self.on_advance(moment)
            while self._timers and self._timers[0][0] <= moment + EPSILON:
                _, _, waiter = heapq.heappop(self._timers)
                self._wake(waiter, by_signal=False)


class InstantClock:
    """No time passes at all: a single synchronous call (TwilioEmulator.call) as before the
    switchboard, where <Pause> is never slept."""

    def now(self) -> float:
        """Always 0."""
        return 0.0

    def sleep(self, seconds: float) -> None:
        """Returns at once."""

    def wait(self, signal: Signal | threading.Event, timeout: float | None) -> bool:
        """Whether the signal is already set: nobody else could set it."""
        return signal.is_set()

    def signal(self) -> Signal:
        """A new signal."""
        return _EventSignal()

    def spawn(self, target: Callable[[], None], *, name: str) -> threading.Thread:
        """Not for concurrent calls: use RealClock or VirtualClock."""
        raise TypeError("InstantClock plays one call at a time: use RealClock or VirtualClock")
