"""The Media Streams process's entry: `python -m hotline.streams` (the Procfile's `streams`).

It wires what web and worker wire and serves Twilio's Media Streams sockets on `STREAMS_PORT`
(`ivr.stream_server`), apart from the web process, so that long-lived sockets never take a
thread a webhook needs. SIGTERM or SIGINT closes the sockets and waits for their transcripts.
"""

from __future__ import annotations

import asyncio
import signal

from hotline.config import load_settings
from hotline.factory import wire
from ivr.stream_server import run_streams


async def _main() -> None:
    wiring = wire(load_settings())
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
