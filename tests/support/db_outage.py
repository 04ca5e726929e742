"""Make the database go away and come back, for one test's app only.

PostgreSQL: the app talks to the server through a TCP proxy this test owns; `down()` closes the
listening socket and cuts every open connection, `up()` listens again on the same port. The shared
server itself is never touched.
SQLite: the app's database file lives in a directory that does not exist yet; `up()` creates it
and migrates it. (SQLite keeps open files readable, so it can only start down.)
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sqlalchemy.engine import make_url

from wizesync.db.migrate import upgrade_head


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; can be shut and reopened on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a dead network: no goodbye to either side
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()
            self._writers.discard(sink)


class PostgresOutage:
    def __init__(self, database_url: str) -> None:
        parsed = make_url(database_url)
        self._proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        self._url = parsed

    async def start_up(self) -> None:
        await self._proxy.start()

    @property
    def url(self) -> str:
        return self._url.set(host="127.0.0.1", port=self._proxy.port).render_as_string(
            hide_password=False
        )

    async def down(self) -> None:
        await self._proxy.stop()

    async def up(self) -> None:
        await self._proxy.start()

    async def close(self) -> None:
        await self._proxy.stop()


class SqliteOutage:
    def __init__(self, tmp_path: Path) -> None:
        self._file = tmp_path / "not-yet-created" / "wizesync.db"

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self._file}"

    async def up(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        # The running app's worker opens the new file as soon as it exists; on a busy machine
        # its connection can hold the lock the migration's first PRAGMA needs: try again.
        for attempt in range(5):
            try:
                await asyncio.to_thread(upgrade_head, self.url)
                return
            except Exception as exc:
                if "locked" not in str(exc) or attempt == 4:
                    raise
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        return None
