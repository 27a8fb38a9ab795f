"""``launch.py migrate --to-team``: copy an embedded workspace's tables (jobs, API keys, task
groups, projects and whatever other tables it has) from its SQLite file into the team's
Postgres, then put unfinished jobs back on the team's queue.

Stop the studio first. Rows already in Postgres (same primary key) are left alone, so running
the migration twice is harmless. Files stay where they are: the team studio keeps using the
same workspace folder for outputs, uploads and projects.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from peewee import AutoField, BigAutoField, SqliteDatabase

from app.backends import ensure_columns, make_database, redact
from app import jobstate
from app.db import MODELS, BaseModel, Job
from core.errors import ConfigError

log = logging.getLogger(__name__)

BATCH = 200
SKIP_TABLES = {"workers"}  # the fleet is live state, not history
OPTIONAL_MODULES = ("app.api.models", "app.episodes", "app.projects")


def known_models() -> dict[str, type]:
    """Table name -> model class, for every model the app declares (imported if present)."""
    for name in OPTIONAL_MODULES:
        try:
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
        except ImportError as exc:
            log.warning("could not import %s (%s); its tables are copied by reflection", name, exc)
    found, stack = {}, list(BaseModel.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        found.setdefault(cls._meta.table_name, cls)
    for model in MODELS:
        found[model._meta.table_name] = model
    return found


def _copy(model, src, dst) -> int:
    with src.bind_ctx([model]):
        ensure_columns(src, [model])
        rows = list(model.select().dicts())
    with dst.bind_ctx([model]):
        dst.create_tables([model], safe=True)
        ensure_columns(dst, [model])
        with dst.atomic():
            for i in range(0, len(rows), BATCH):
                model.insert_many(rows[i:i + BATCH]).on_conflict_ignore().execute()
        pk = model._meta.primary_key
        if isinstance(pk, (AutoField, BigAutoField)) and rows:  # keep the id sequence ahead of copied ids
            table, column = model._meta.table_name, pk.column_name
            dst.execute_sql(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                            f"(SELECT MAX({column}) FROM {table}))")
    return len(rows)


def migrate_to_team(settings, database_url: str, queue_url: str | None = None) -> dict:
    """Copy ``settings.workspace``'s SQLite tables into ``database_url``; re-enqueue on
    ``queue_url`` (default: the Postgres database itself). Returns counts per table."""
    from playhouse.reflection import Introspector

    from app.queue import JobQueue

    if not settings.db_path.exists():
        raise ConfigError(f"No embedded database at {settings.db_path}: nothing to migrate.",
                          f"{settings.db_path} 没有嵌入式数据库，无需迁移。")
    team = settings.model_copy(update={"database_url": database_url, "queue_url": queue_url})
    src = SqliteDatabase(str(settings.db_path), pragmas={"busy_timeout": 10000})
    dst = make_database(team)
    src.connect()
    dst.connect()
    counts: dict[str, int] = {}
    try:
        models = known_models()
        tables = [t for t in src.get_tables() if t not in SKIP_TABLES and not t.startswith("sqlite_")]
        unknown = [t for t in tables if t not in models]
        reflected = Introspector.from_database(src).generate_models(table_names=unknown) if unknown else {}
        for table in tables:
            model = models.get(table) or reflected[table]
            counts[table] = _copy(model, src, dst)
            log.info("copied %s rows of %s to %s", counts[table], table, redact(database_url))
        counts["requeued"] = _requeue(team, dst, JobQueue)
    finally:
        src.close()
        dst.close()
    return counts


def _requeue(team, dst, job_queue_cls) -> int:
    """Unfinished jobs go back on the team's queue: local ones as queued, cloud polls resumed."""
    queue = job_queue_cls(team.queue_dir, lambda *a: None, gpu_workers=0, io_workers=0, settings=team)
    n = 0
    try:
        with dst.bind_ctx([Job]):
            jobstate.requeue_running_local("moved to team mode; queued again")
            for job in Job.select().where(Job.status.in_(("queued", "running"))):
                token = job.polls if (job.status == "running" and job.remote_id) else None
                huey_id = queue.enqueue(job.lane, job.id, token=token)
                jobstate.set_huey_id(job.id, huey_id)
                n += 1
    finally:
        queue.close()
    return n
