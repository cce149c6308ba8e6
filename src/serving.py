"""How `taskapi serve` runs the service: uvicorn's own supervisor with N worker processes.

Uvicorn (0.30+) supervises its workers itself: it restarts one that dies, replaces them one by
one on SIGHUP, and on SIGTERM or SIGINT passes the signal on. Each worker then stops accepting,
lets its in-flight requests finish for up to GRACEFUL_TIMEOUT seconds, runs the app's shutdown
(which closes the database pool) and exits; the supervisor exits 0 once all have. That is all
gunicorn would add here, so there is one server fewer to configure and to learn. With several
workers, each gets a listening socket of its own (`BalancedWorkers`), so that the kernel
spreads connections evenly over them. With DRAIN_SECONDS, SIGTERM first fails readiness for that
long while serving goes on (`Drain`), so a load balancer stops routing before the listener closes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from taskapi.errors import ServiceUnavailableError
from taskapi.settings import Settings

logger = logging.getLogger("taskapi")
APP = "taskapi.asgi:app"
# Where the app keeps its Drain in each request's state, for the readiness probe.
DRAIN_STATE_KEY = "taskapi.drain"


class Drain:
    """SIGTERM with DRAIN_SECONDS set: readiness fails at once, requests are still served for
    that long, and only then does uvicorn's graceful shutdown close the listener.

    A load balancer that checks `/v1/readyz` thus takes the replica out of rotation while it
    still accepts: no request meets a closed port or an idle connection closed under it. The
    app's lifespan installs it in every worker (uvicorn has put its own SIGTERM handler in place
    by then, in the main thread), so workers that uvicorn's supervisor restarts drain too. A
    second SIGTERM, or SIGINT, stops at once.
    """

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.draining = False

    def install(self) -> None:
        """Wrap the server's SIGTERM handler; called on the server's event loop."""
        if self.seconds <= 0 or threading.current_thread() is not threading.main_thread():
            return  # no drain asked for, or not served by uvicorn (an in-process test client)
        shutdown = signal.getsignal(signal.SIGTERM)
        if callable(shutdown):
            loop = asyncio.get_running_loop()
            signal.signal(
                signal.SIGTERM, functools.partial(self._begin, loop=loop, shutdown=shutdown)
            )

    def check(self) -> None:
        """Raise ServiceUnavailableError while draining."""
        if self.draining:
            raise ServiceUnavailableError(
                "This replica is shutting down.", retry_after=max(self.seconds, 1)
            )

    def _begin(
        self,
        signum: int,
        frame: FrameType | None,
        *,
        loop: asyncio.AbstractEventLoop,
        shutdown: Callable[[int, FrameType | None], object],
    ) -> None:
        if self.draining:
            shutdown(signum, frame)
            return
        self.draining = True
        logger.info("draining before shutdown", extra={"seconds": self.seconds})
        # A signal handler may run in the middle of the loop's own work: hand over safely.
        loop.call_soon_threadsafe(loop.call_later, self.seconds, shutdown, signum, None)


# Room left for the request line (path and query) beyond MAX_HEADER_BYTES, and the factor of
# MAX_HEADER_COUNT: a head between the app's bounds and these gets the app's 431.
HEAD_URL_BYTES = 64 * 1024
HEAD_FIELDS_FACTOR = 4


class RequestReadTimeoutProtocol(HttpToolsProtocol):
    """Uvicorn's HTTP/1.1 protocol, plus a deadline for reading each request.

    Uvicorn closes idle keep-alive connections, but a client that connects and sends nothing, or
    sends its request a byte at a time, would hold a connection (and its share of the worker)
    for ever. Here the whole request must arrive within REQUEST_READ_TIMEOUT seconds of the
    connection, or of its first byte on a kept-alive connection; else the connection is closed.
    """

    _read_deadline: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _head_fields = 0

    def __init__(
        self,
        *args: Any,
        read_timeout: float,
        most_head_bytes: int,
        most_head_fields: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout
        self._most_head_bytes = most_head_bytes
        self._most_head_fields = most_head_fields

    @classmethod
    def configured(cls, settings: Settings) -> Callable[..., RequestReadTimeoutProtocol]:
        """The protocol factory uvicorn is given: the settings travel with it (pickled) into
        each worker process, which reads nothing from the environment for them."""
        return functools.partial(
            cls,
            read_timeout=float(settings.request_read_timeout),
            most_head_bytes=settings.max_header_bytes + HEAD_URL_BYTES,
            most_head_fields=settings.max_header_count * HEAD_FIELDS_FACTOR,
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._head_fields = 0
        if self._read_deadline is None:
            self._arm_read_deadline()

    # The app answers header fields past MAX_HEADER_BYTES or MAX_HEADER_COUNT with 431; a head
    # far past even that is not read into memory at all. Raising in a parser callback makes
    # uvicorn answer 400 and close the connection.
    def on_url(self, url: bytes) -> None:
        self._count_head(len(url), fields=0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value), fields=1)
        super().on_header(name, value)

    def _count_head(self, size: int, *, fields: int) -> None:
        self._head_bytes += size
        self._head_fields += fields
        if self._head_bytes > self._most_head_bytes or self._head_fields > self._most_head_fields:
            raise RequestHeadTooLargeError

    def on_message_complete(self) -> None:
        self._disarm_read_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def _arm_read_deadline(self) -> None:
        self._read_deadline = self.loop.call_later(self._read_timeout, self._read_deadline_passed)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_deadline_passed(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class RequestHeadTooLargeError(Exception):
    """A request head past what the server reads at all (`_head_limits`)."""


def prepare_multiprocess_metrics(directory: str) -> None:
    """Empty the metrics folder before any worker starts: files left by a previous run would
    otherwise be summed with this one's."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def serve(settings: Settings) -> None:
    """Serve on HOST:PORT with WORKERS processes until SIGTERM or SIGINT."""
    if settings.prometheus_multiproc_dir:
        prepare_multiprocess_metrics(settings.prometheus_multiproc_dir)
    logger.info("serving", extra={"host": settings.host, "port": settings.port})
    options: dict[str, Any] = {
        "http": RequestReadTimeoutProtocol.configured(settings),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "timeout_graceful_shutdown": settings.graceful_timeout,
        "log_config": None,  # our JSON logging, configured when taskapi.asgi is imported
        "access_log": False,  # replaced by the structured access record
        "server_header": False,
        # The app honours X-Forwarded-* itself, from FORWARDED_ALLOW_IPS only (taskapi.app).
        "proxy_headers": False,
    }
    if settings.workers > 1 and hasattr(socket, "SO_REUSEPORT"):
        config = uvicorn.Config(
            APP, host=settings.host, port=settings.port, workers=settings.workers, **options
        )
        sockets = _listening_sockets(settings.host, settings.port, count=settings.workers)
        BalancedWorkers(config, sockets=sockets).run()
        return
    uvicorn.run(APP, host=settings.host, port=settings.port, workers=settings.workers, **options)


class BalancedWorkers(Multiprocess):
    """Uvicorn's supervisor, each worker listening on a socket of its own.

    With uvicorn's one shared socket, whichever worker wakes first accepts a whole burst of new
    connections, and keep-alive clients then stay where they landed: one worker busy beside an
    idle one (docs/deployment.md, "Serving"). Sockets bound with SO_REUSEPORT let the kernel
    spread connections across workers instead. A worker that uvicorn starts later (after one
    died, or on SIGHUP) listens on every socket, so none is left unserved.
    """

    def init_processes(self) -> None:
        for sock in self.sockets:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def terminate_all(self) -> None:
        """Signal the workers, then close the supervisor's own copies of their sockets.

        While the supervisor holds a copy, a socket that its worker has closed (a worker that
        stopped before the others: SIGTERM during its start-up, or a second SIGTERM) still
        listens, and the kernel keeps giving it its share of new connections, which then wait
        for ever. Without the copy, they go to the workers still listening.
        """
        super().terminate_all()
        for sock in self.sockets:
            sock.close()


def _listening_sockets(host: str, port: int, *, count: int) -> list[socket.socket]:
    """`count` sockets bound to host:port with SO_REUSEPORT (a port of 0 is chosen once)."""
    sockets: list[socket.socket] = []
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets
