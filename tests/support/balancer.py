"""A TCP round-robin load balancer on loopback: one front door for several API processes.

Each new client connection goes to the next backend that accepts it; a backend that refuses (its
process was killed and not yet back) is skipped, and when none accepts, the client's connection
is dropped, as a real load balancer with no healthy target would. Connection-level balancing is
what an L4 balancer does: a keep-alive connection stays on its backend until one side closes it.
Runs on its own thread and event loop (like `processes.TcpProxy`), so it keeps forwarding while
the caller's loop is busy.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

from tests.support.processes import _pipe, free_port


class RoundRobinBalancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        if not backends:
            raise ValueError("a balancer needs at least one backend")
        self.backends = list(backends)
        self.port = free_port()
        self.connections: dict[tuple[str, int], int] = {b: 0 for b in self.backends}
        self.refused = 0  # client connections dropped: no backend accepted
        self._next = itertools.cycle(range(len(self.backends)))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="balancer", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self) -> None:
        self._call(self._start())

    def close(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            backend = self.backends[next(self._next)]
            try:
                pair = await asyncio.wait_for(asyncio.open_connection(*backend), 5)
            except (OSError, TimeoutError):
                continue
            self.connections[backend] += 1
            return pair
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            self.refused += 1
            writer.transport.abort()
            return
        up_reader, up_writer = upstream
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            writer.transport.abort()
            up_writer.transport.abort()
