"""The job table: the one source of truth for every job. Huey only dispatches.

The database is declared unbound and opened by ``open_db`` at startup (WAL, busy timeout),
never at import.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from peewee import (
    BooleanField,
    CharField,
    DatabaseProxy,
    FloatField,
    IntegerField,
    InterfaceError,
    JSONField,
    Model,
    Node,
    OperationalError,
    SqliteDatabase,
    TextField,
)

db = DatabaseProxy()

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")


class BaseModel(Model):
    class Meta:
        database = db


class Job(BaseModel):
    id = CharField(primary_key=True, max_length=32)
    engine = CharField(index=True)
    kind = CharField()  # local | cloud
    lane = CharField()  # gpu | io
    task = CharField(null=True)  # t2v, i2v... what the request asked for
    status = CharField(index=True, default="queued")
    progress = FloatField(default=0.0)  # 0-100
    message = TextField(null=True)  # current step / provider status, for people

    prompt = TextField(default="")
    negative_prompt = TextField(default="")
    images = JSONField(default=list)  # [{role, path|url}]
    params = JSONField(default=dict)  # resolved: seed filled in, defaults applied
    request = JSONField(default=dict)  # the request as given (minus uploads' bytes)

    project = CharField(null=True, index=True)
    parent = CharField(null=True, index=True)  # episode parent job
    user = CharField(null=True, index=True)
    source = CharField(default="ui")  # ui | api | rest:<seed> | project
    rerun_of = CharField(null=True)

    error = TextField(null=True)
    error_zh = TextField(null=True)
    error_code = CharField(null=True)

    remote_id = CharField(null=True, index=True)  # cloud vendor's task id
    remote_status = CharField(null=True)
    remote_phase = CharField(null=True)  # creating | polling | collecting
    polls = IntegerField(default=0)
    info = JSONField(default=dict)  # vendor extras: original URL, actual prompt, usage, notes

    outputs = JSONField(default=list)  # [{path (workspace-relative), kind, thumbnail, ...}]
    output_dir = TextField(null=True)
    attempts = IntegerField(default=0)
    cancel_requested = BooleanField(default=False)
    huey_id = CharField(null=True)
    # lease (team mode, app.team): who runs it, until when, and a fencing token bumped at each claim
    lease_owner = CharField(null=True)
    lease_expires = FloatField(null=True, index=True)
    fence = IntegerField(default=0)

    created_at = FloatField(default=time.time, index=True)
    started_at = FloatField(null=True)
    finished_at = FloatField(null=True)
    updated_at = FloatField(default=time.time)

    class Meta:
        table_name = "jobs"

    @classmethod
    def find(cls, job_id: str) -> Job | None:
        """The row, or None: ``get_or_none(Job.id == job_id)``, with its SQL built once per database.
        Peewee builds the 30-column SELECT anew on every call (about 0.4 ms of CPU, five times the
        query); the cloud chains read a row several times per job."""
        database = db.obj
        sql = getattr(database, "_xianying_find_job", None)
        if sql is None:
            sql = database._xianying_find_job = cls.select().where(cls.id == "").sql()[0]
        return next(iter(cls.raw(sql, job_id)), None)

    @classmethod
    def add(cls, **fields) -> Job:
        """``create(**fields)``, with its INSERT built once per database and shape (which columns, which
        values peewee wraps, such as ``json(?)``): peewee built the 38-column INSERT for every row,
        about 1 ms of CPU, nine tenths of a 500-job ``/submit_many`` while the server's other requests
        waited for the GIL. The statement and its values are peewee's own, in its order."""
        job = cls(**fields)
        database = db.obj
        data = job.__data__
        values = {name: cls._meta.fields[name].db_value(value) for name, value in data.items()}
        shape = tuple(sorted((name, isinstance(value, Node)) for name, value in values.items()))
        cache = database.__dict__.setdefault("_xianying_insert_job", {})
        found = cache.get(shape)
        if found is None:  # the first row of this shape: peewee builds it, and it is kept with its columns
            sql, params = cls.insert(data).sql()
            listed = sql[sql.index("(") + 1:sql.index(")")].split(",")
            cache[shape] = (sql, [cls._meta.columns[name.strip().strip('"`[]')].name for name in listed])
        else:
            sql, order = found
            params = []
            for name in order:
                value = values[name]
                if isinstance(value, Node):  # e.g. fn.json(text): its own parameters, as peewee binds them
                    params.extend(database.get_sql_context().sql(value).query()[1])
                else:
                    params.append(value)
        database.execute_sql(sql, params)
        job._dirty.clear()
        return job

    @classmethod
    def fetch(cls, job_id: str) -> Job:
        """``find``, for a row that must exist: ``get_by_id`` (raises ``Job.DoesNotExist``)."""
        job = cls.find(job_id)
        if job is None:
            raise cls.DoesNotExist(f"job {job_id}")
        return job


class ProjectOwner(BaseModel):
    """Who a project belongs to (``app.projects``); a project with no row is shared read-only."""

    project = CharField(primary_key=True)
    user = CharField(index=True)
    created_at = FloatField(default=time.time)

    class Meta:
        table_name = "project_owners"


MODELS = (Job, ProjectOwner)


def open_db(target: Path | object) -> SqliteDatabase:
    """Open (creating if needed) the studio database and bind the models to it. ``target``:
    the settings (SQLite file in the workspace, or ``database_url``: see app.backends) or a
    SQLite path. Columns added since an older workspace was made are added to its tables."""
    from .backends import ensure_columns, make_database

    database = make_database(target)
    db.initialize(database)
    with database.connection_context():
        database.create_tables(MODELS, safe=True)
        ensure_columns(database, MODELS)
    return database


_kept = threading.local()


def keep_connection() -> None:
    """This thread keeps its connection open between ``connection()`` blocks: for the studio's own
    long-lived threads (queue workers, the cloud process's), which run a step after another. Opening a
    connection (the file, its WAL and shared memory, four pragmas) was most of what a cloud step cost
    its worker. A block that fails on the connection itself closes it; the next one opens a new one."""
    _kept.keep = True


class connection:
    """Use the thread's open connection, or open one for the duration of the block (on a thread that
    ``keep_connection()``, it stays open after)."""

    def __enter__(self):
        self._opened = db.is_closed()
        if self._opened:
            db.connect()
        return db

    def __exit__(self, exc_type, exc, tb):
        if db.is_closed():
            return False
        if getattr(_kept, "keep", False):
            if exc is not None and isinstance(exc, (OperationalError, InterfaceError)):
                db.close()
        elif self._opened:
            db.close()
        return False
