"""A TCP proxy on 127.0.0.1 that delays each direction by a fixed time: a WAN on loopback.

Between an Azure region and an AWS region a round trip takes a few ms inside one metro
and 80-160 ms between continents. This puts such a round trip in front of a local
endpoint: every chunk of bytes is held ``one_way_ms`` before it is passed on, in order,
so calls in flight overlap as they do on a real link (it delays, it does not throttle).
Opening a connection costs nothing extra: botocore keeps its connections to AWS alive,
while LocalStack's host runtime answers every call with ``Connection: close``; charging
a handshake would charge LocalStack's habit to the consumer.

    with LatencyProxy("http://127.0.0.1:4566", one_way_ms=40) as proxy:
        ...  # point the client at proxy.url
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
CHUNK = 65_536


class LatencyProxy:
    def __init__(self, upstream_url: str, one_way_ms: float) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or LOOPBACK, parts.port or 80)
        self.delay = one_way_ms / 1000
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="latency-proxy", daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join()

    def _serve(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._connection, LOOPBACK, 0)
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://{LOOPBACK}:{port}"
        self._ready.set()
        async with server:
            await self._stopped.wait()
            server.close()
        connections = asyncio.all_tasks() - {asyncio.current_task()}
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)

    async def _connection(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        try:
            upstream_in, upstream_out = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_out.close()
            return
        await asyncio.gather(
            self._pipe(client_in, upstream_out),
            self._pipe(upstream_in, client_out),
            return_exceptions=True,
        )

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy one direction, each chunk held ``delay`` seconds from when it arrived."""
        loop = asyncio.get_running_loop()
        in_transit: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await in_transit.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - loop.time()))
                sink.write(data)
                await sink.drain()

        delivery = asyncio.create_task(deliver())
        try:
            while data := await source.read(CHUNK):
                in_transit.put_nowait((loop.time() + self.delay, data))
        except OSError:
            pass
        in_transit.put_nowait(None)
        with contextlib.suppress(OSError):
            await delivery
        sink.close()


@contextmanager
def latency_proxy_process(upstream_url: str, one_way_ms: float) -> Iterator[str]:
    """The proxy in a process of its own (so the consumer under test cannot slow its clock); its URL."""
    command = [sys.executable, "-m", "benchmarks.latency_proxy", upstream_url, str(one_way_ms)]
    # Our own interpreter and module, with the caller's URL and number as arguments.
    process = subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1]
    )
    try:
        url = process.stdout.readline().strip() if process.stdout else ""
        if not url.startswith("http://"):
            raise RuntimeError(f"the latency proxy did not start: {url!r}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(argv: list[str]) -> int:
    """``python -m benchmarks.latency_proxy UPSTREAM_URL ONE_WAY_MS``: prints its URL, serves until killed."""
    upstream, one_way_ms = argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LatencyProxy(upstream, float(one_way_ms)) as proxy:
        print(proxy.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
