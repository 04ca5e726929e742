"""`wizesync worker --check`: is a worker on this host alive? For a container healthcheck.

Alive means a worker process of this host (the container's hostname) has a heartbeat in the
database that is fresh by the same rule `/ready` uses: the worker reaches the database and its
heartbeat loop runs. Exit 0 when alive, 1 with the reason otherwise.
"""

from __future__ import annotations

import socket

from wizesync.config import Settings


def fresh_within(settings: Settings) -> float:
    """Seconds a heartbeat stays fresh: three beats (a beat is at most every 10 s), at least 30."""
    return max(30.0, 3 * min(10.0, settings.worker_lease_seconds / 3))


async def check_worker(settings: Settings, hostname: str | None = None) -> tuple[bool, str]:
    from wizesync.db import heartbeat_repo
    from wizesync.db.base import utcnow
    from wizesync.db.engine import create_engine, create_sessionmaker

    host = hostname or socket.gethostname()
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            last = await heartbeat_repo.latest_beat_of_host(session, host)
    except Exception as exc:
        return False, f"cannot read heartbeats: {type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()
    if last is None:
        return False, f"no running worker on {host} has sent a heartbeat"
    age = (utcnow() - last).total_seconds()
    limit = fresh_within(settings)
    if age > limit:
        return False, f"the last heartbeat of a worker on {host} is {age:.0f} s old (> {limit:.0f})"
    return True, f"a worker on {host} beat {age:.1f} s ago"
