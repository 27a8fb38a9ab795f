"""The backend factory (app/backends.py): choice by URL, clear errors, passwords kept out of
sight, and older SQLite workspaces gaining the lease columns. No servers needed."""

from __future__ import annotations

import sqlite3

import pytest

from app.backends import ensure_columns, make_database, redact
from app.queue import make_lane
from core.errors import ConfigError
from app.settings import load_settings


def test_redact_hides_the_password_only():
    assert redact("postgresql://xy:s3cr3t@db:5432/team") == "postgresql://xy:***@db:5432/team"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert "s3cr3t" not in redact("redis://:s3cr3t@h:6379/0")


def test_urls_choose_the_backends_and_bad_ones_say_how_to_fix(tmp_path, monkeypatch):
    psycopg = pytest.importorskip("psycopg", reason="pip install -e '.[team]'")
    pytest.importorskip("redis", reason="pip install -e '.[team]'")
    embedded = load_settings(tmp_path)
    assert type(make_database(embedded)).__name__ == "SqliteDatabase"
    assert type(make_lane(embedded, "gpu")).__name__ == "LaneHuey"
    monkeypatch.setenv("XIANYING_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/x")
    monkeypatch.setenv("XIANYING_QUEUE_URL", "redis://127.0.0.1:1/0")
    team = load_settings(tmp_path)
    assert type(make_database(team)).__name__ == "TeamPostgresDatabase"  # lazy: nothing connects yet
    assert type(make_lane(team, "gpu")).__name__ == "RedisHuey"
    no_queue = team.model_copy(update={"queue_url": None})
    with pytest.raises(psycopg.OperationalError, match="port 1"):  # team mode defaults to Postgres lanes
        make_lane(no_queue, "io")  # (PostgresHuey creates its tables at once: here, nothing listens)
    with pytest.raises(ConfigError, match=r"\*\*\*") as err:
        make_database(team.model_copy(update={"database_url": "mysql://u:pw@h/x"}))
    assert "pw" not in err.value.en
    with pytest.raises(ConfigError, match="redis://"):
        make_lane(team.model_copy(update={"queue_url": "amqp://h"}), "gpu")


def test_an_older_sqlite_workspace_gets_the_lease_columns(tmp_path):
    from app.db import Job, open_db

    path = tmp_path / "studio.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE jobs (id VARCHAR(32) PRIMARY KEY, engine VARCHAR(255), kind TEXT, lane TEXT, "
                "status TEXT, created_at REAL)")
    con.execute("INSERT INTO jobs VALUES ('0123456789abcdef0123456789abcdef', 'e', 'local', 'gpu', 'queued', 1.0)")
    con.commit()
    con.close()
    database = open_db(path)
    with database.connection_context():
        columns = {c.name for c in database.get_columns("jobs")}
        assert {"lease_owner", "lease_expires", "fence"} <= columns
        row = Job.get()
        assert row.fence == 0 and row.lease_owner is None and row.status == "queued"
        assert ensure_columns(database, [Job]) == []  # nothing left to add
    database.close()
