"""The Media Streams process's entry: `python -m hotline.streams` (the Procfile's `streams`).

It wires what web and worker wire and serves Twilio's Media Streams sockets on `STREAMS_PORT`
(`ivr.stream_server`), apart from the web process, so that long-lived sockets never take a
thread a webhook needs. SIGTERM or SIGINT closes the sockets and waits for their transcripts.
The models of the locales streamed live are loaded before it listens.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from hotline.config import load_settings
from hotline.factory import wire
from ivr.stream_server import run_streams
from transcription.models import ModelUnavailableError

log = logging.getLogger("hotline.ivr.streams")


async def _main() -> None:
    wiring = wire(load_settings())
    # Each model the calls stream in is loaded before the first call, not on it: loading takes
    # seconds, and meanwhile that call's frames would wait unread (no word heard, no emergency
    # interrupt, no "speech heard" for the Record action).
    for locale in sorted(wiring.call_flow.live.locales if wiring.call_flow.live else ()):
        try:
            wiring.models.get(locale)
        except ModelUnavailableError:  # its calls go to the batch job; each stream says why
            log.warning("the %s model could not be loaded", locale, exc_info=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_streams(wiring, "0.0.0.0", wiring.settings.streams_port, stop=stop)


def main() -> None:
    """Serve Media Streams until told to stop."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
