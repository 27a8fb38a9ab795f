"""Team-mode fixtures: one private Redis and one private Postgres for the whole session (skipped,
with the reason, where the Debian packages are missing), a fresh database per test."""

from __future__ import annotations

import shutil
import uuid

import pytest

from tests.team.servers import PostgresServer, RedisServer, make_root, missing_servers

WAN = "wan2.1-t2v-1.3b"
TINY = {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}


@pytest.fixture(scope="session")
def servers():
    why = missing_servers()
    if why:
        pytest.skip(why)
    root = make_root("xy-team-")
    redis = RedisServer(root / "redis").start()
    pg = PostgresServer(root / "pg").start()
    yield redis, pg
    redis.stop()
    pg.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def team_urls(servers):
    """(database_url, queue_url): an empty database and an empty Redis for this test."""
    redis, pg = servers
    redis.flush()
    return pg.create_database(f"xy_{uuid.uuid4().hex[:10]}"), redis.url


def team_config(lease_s: float = 3.0, **extra) -> str:
    """config.yaml text with short team timings (seconds, not the defaults' tens of seconds)."""
    import yaml

    team = {"lease_s": lease_s, "heartbeat_s": 0.5, "monitor_interval_s": 0.3, "warm_wait_s": 1.0, **extra}
    return yaml.safe_dump({"team": team})
