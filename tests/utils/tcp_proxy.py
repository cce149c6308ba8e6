"""A TCP proxy on 127.0.0.1 between the service and PostgreSQL or Redis, to fail the network on cue.

Outages are simulated here rather than by stopping the PostgreSQL server, which other test runs
on the machine may be using. The proxy runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

CHUNK = 65536


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`. Besides forwarding it can:

    - `refuse()`: close every connection (with a reset) and refuse new ones, like a server that
      went down; `forward()` listens again on the same port.
    - `stall_new()`: close every connection and accept new ones without ever answering, like an
      unreachable host: clients wait for their connect timeout.
    - `pause()` / `forward()`: hold every byte in both directions, then let them through.
    - `slow(seconds)`: forward every chunk, each `seconds` late.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None
        self._stall_new = False
        self._delay = 0.0

    def start(self) -> None:
        self._thread.start()
        self._run(self._start())

    def close(self) -> None:
        self._run(self._shut_down())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def forward(self) -> None:
        self._run(self._forward())

    def refuse(self) -> None:
        self._run(self._refuse())

    def stall_new(self) -> None:
        self._run(self._stall())

    def pause(self) -> None:
        self._run(self._pause())

    def slow(self, seconds: float) -> None:
        self._delay = seconds

    def through(self, url: str) -> str:
        """`url` (any scheme, with its user and path) pointed at this proxy instead."""
        parsed = urlsplit(url)
        user, at, _ = parsed.netloc.rpartition("@")
        return urlunsplit(parsed._replace(netloc=f"{user}{at}127.0.0.1:{self.port}"))

    def connections(self) -> int:
        """How many client connections are open through the proxy now."""
        return len(self._clients)

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )

    async def _forward(self) -> None:
        self._stall_new = False
        self._delay = 0.0
        assert self._flowing is not None
        self._flowing.set()
        await self._listen()

    async def _refuse(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._reset_all()

    async def _shut_down(self) -> None:
        """Refuse, then end every relay still waiting (on a paused flow, on a stalled peer)."""
        await self._refuse()
        relays = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _stall(self) -> None:
        self._stall_new = True
        self._reset_all()
        await self._listen()

    async def _pause(self) -> None:
        assert self._flowing is not None
        self._flowing.clear()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self._clients.add(writer)
        try:
            await self._relay(reader, writer)
        finally:
            self._clients.discard(writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stall_new:
            await reader.read()  # accepted, never answered, until reset or closed
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(reader, upstream_writer),
            self._pipe(upstream_reader, writer),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if self._delay:
                    await asyncio.sleep(self._delay)
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


# The ways a dependency fails, as the fault tests apply them.
FAULTS: dict[str, Callable[[TcpProxy], None]] = {
    "refused": TcpProxy.refuse,
    "stalled": TcpProxy.stall_new,  # accepts connections, never answers
    "paused": TcpProxy.pause,  # open connections stop answering mid-way
    "slow": lambda proxy: proxy.slow(1.0),  # every answer comes, too late
}


@contextmanager
def proxied_redis() -> Iterator[TcpProxy]:
    """A proxy in front of TEST_REDIS_URL's server (`proxy.through(url)` reaches it); the
    calling test is skipped without TEST_REDIS_URL."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis tests need TEST_REDIS_URL (make test sets it in CI)")
    parsed = urlsplit(url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
