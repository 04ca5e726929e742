"""The chaos run's front door: connections go round the backends and skip a dead one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.balancer import RoundRobinBalancer
from tests.support.processes import free_port


async def _named_server(name: bytes) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def _ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.read(100), 5)
    finally:
        writer.close()


@pytest.fixture
async def servers() -> AsyncIterator[list[asyncio.Server]]:
    started = [await _named_server(b"a"), await _named_server(b"b")]
    yield started
    for server in started:
        server.close()


async def test_connections_alternate_between_backends(servers: list[asyncio.Server]) -> None:
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    balancer = RoundRobinBalancer([("127.0.0.1", p) for p in ports])
    balancer.start()
    try:
        answers = [await _ask(balancer.port) for _ in range(4)]
    finally:
        balancer.close()
    assert answers == [b"a", b"b", b"a", b"b"]


async def test_a_dead_backend_is_skipped_and_none_alive_drops_the_client(
    servers: list[asyncio.Server],
) -> None:
    live = servers[0].sockets[0].getsockname()[1]
    balancer = RoundRobinBalancer([("127.0.0.1", free_port()), ("127.0.0.1", live)])
    balancer.start()
    try:
        assert [await _ask(balancer.port) for _ in range(3)] == [b"a"] * 3
        servers[0].close()
        await servers[0].wait_closed()
        assert await _ask(balancer.port) == b""
        assert balancer.refused == 1
    finally:
        balancer.close()
