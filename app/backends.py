"""The one place that chooses storage: embedded (SQLite files in the workspace, what a desktop
user gets) or team mode (Postgres for the job tables, Redis or Postgres for the queue lanes).

    make_database(settings)      SQLite (WAL, busy timeout) or Postgres from ``database_url``
    (the queue lanes are built by ``app.queue.make_lane``, from ``queue_url``; default in team
    mode: ``database_url``)
    ensure_columns(database, models)   add columns a newer model has and an older table lacks

Everything above these factories (models, task code, the job service, the runner) is the same
on every backend. Team-mode drivers (``redis``, ``psycopg``) are imported only when a URL asks
for them; a missing one is a ``ConfigError`` naming the extra to install.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from peewee import InterfaceError, OperationalError, SqliteDatabase

from core.errors import ConfigError
from core.platform import sqlite_journal_mode

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": "normal"}
POSTGRES_SCHEMES = ("postgres", "postgresql")
REDIS_SCHEMES = ("redis", "rediss", "unix")
# Errors after which a statement outside a transaction is retried once on a fresh connection
# (a Postgres restart, a dropped socket). Inside a transaction the error goes to the caller.
_RECONNECT_FRAGMENTS = ("terminating connection", "server closed the connection", "connection is lost",
                        "connection is closed", "connection is bad", "consuming input failed",
                        "connection already closed", "could not receive data", "connection not open",
                        "ssl connection has been closed", "cannot rollback")
SUBMIT_LOCK = 0x78790001  # advisory lock: Postgres's stand-in for SQLite's BEGIN IMMEDIATE


def is_team(settings) -> bool:
    """Team mode: the job tables live in a shared database."""
    return bool(getattr(settings, "database_url", None))


def redact(url: str | None) -> str:
    """A URL fit for logs and screens: the password replaced by ``***``."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def scheme_of(url: str) -> str:
    return urlsplit(url).scheme.split("+")[0].lower()


def need_module(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"{what} needs the '{module}' package: pip install -e '.[team]'.",
                          f"{what}需要安装 '{module}'：pip install -e '.[team]'。") from exc


# --- the job database ---------------------------------------------------------------------
def make_database(target):
    """The studio database for ``target``: settings (``database_url`` or the workspace's
    SQLite file) or a SQLite path."""
    url = getattr(target, "database_url", None)
    if url:
        return _postgres(url)
    path = target.db_path if hasattr(target, "db_path") else Path(target)
    pragmas = {**SQLITE_PRAGMAS, "journal_mode": sqlite_journal_mode(path)}  # no WAL on a network drive
    return SqliteDatabase(str(path), pragmas=pragmas, check_same_thread=False)


def _postgres(url: str):
    if scheme_of(url) not in POSTGRES_SCHEMES:
        raise ConfigError(f"database_url must be postgresql://user:password@host:port/dbname (got {redact(url)}).",
                          f"database_url 应为 postgresql://用户:密码@主机:端口/库名（当前：{redact(url)}）。")
    need_module("psycopg", "A Postgres database_url")
    from playhouse.db_url import parse
    from playhouse.pool import PooledPostgresqlDatabase

    class TeamPostgresDatabase(PooledPostgresqlDatabase):
        """Pooled, reconnecting Postgres; floats are double precision (Postgres's FLOAT is
        4-byte REAL, which would round timestamps to minutes); ``atomic("IMMEDIATE")``
        serialises like SQLite's write lock, through an advisory lock."""

        field_types = {**PooledPostgresqlDatabase.field_types, "FLOAT": "DOUBLE PRECISION"}

        def begin(self, isolation_level=None):
            if isinstance(isolation_level, str) and isolation_level.upper() in ("IMMEDIATE", "EXCLUSIVE"):
                super().begin()
                self.cursor().execute("SELECT pg_advisory_xact_lock(%s)", (SUBMIT_LOCK,))
                return None
            return self._retry(super().begin, isolation_level)

        def execute_sql(self, sql, params=None):
            return self._retry(super().execute_sql, sql, params)

        def _retry(self, func, *args):
            try:
                return func(*args)
            except (OperationalError, InterfaceError) as exc:
                if self.in_transaction() or not any(f in str(exc).lower() for f in _RECONNECT_FRAGMENTS):
                    raise
                log.warning("database connection lost (%s); reconnecting", type(exc).__name__)
                if not self.is_closed():
                    self.manual_close()
                self.connect()
                return func(*args)

    params = parse(url)
    database = params.pop("database")
    return TeamPostgresDatabase(database, max_connections=32, stale_timeout=300, timeout=30,
                                prefer_psycopg3=True, **params)


def ensure_columns(database, models) -> list[str]:
    """Add the columns a model declares and its existing table lacks (an older workspace
    opened by a newer studio). Returns ``table.column`` for each one added."""
    from playhouse.migrate import SchemaMigrator, migrate

    migrator = SchemaMigrator.from_database(database)
    added = []
    for model in models:
        table = model._meta.table_name
        have = {c.name for c in database.get_columns(table)}
        ops = []
        for field in model._meta.sorted_fields:
            if field.column_name not in have:
                ops.append(migrator.add_column(table, field.column_name, field))
                added.append(f"{table}.{field.column_name}")
        if ops:
            with database.atomic():
                migrate(*ops)
    if added:
        log.info("database: added columns %s", ", ".join(added))
    return added
