"""``launch.py migrate --to-team``: an embedded workspace's tables move into Postgres, unfinished
jobs go onto the team's queue, and running the migration twice changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, install_weights, wait_for
from tests.team.conftest import TINY, WAN
from app.access import LOCAL, Principal  # noqa: F401


def test_migrate_an_embedded_workspace_to_team_mode(workspace, tiny_wan_dir, team_urls):
    from peewee import SqliteDatabase

    from app.db import Job, db, open_db
    from app.queue import JobQueue
    from app.settings import load_settings
    from app.studio import Studio

    install_weights(workspace, WAN, tiny_wan_dir)
    studio = Studio(load_settings(workspace))
    studio.start()
    with db.connection_context():
        done = studio.service.submit({"engine": WAN, "prompt": "已完成", "params": TINY}, LOCAL)
        wait_for(lambda: Job.get_by_id(done.id).status == "succeeded")
        studio.queue.stop()
        queued = studio.service.submit({"engine": WAN, "prompt": "排队中", "params": TINY}, LOCAL)
        running = studio.service.submit({"engine": WAN, "prompt": "运行中", "params": TINY}, LOCAL)
        Job.update(status="running", attempts=1).where(Job.id == running.id).execute()
        _, key = studio.ops.keys.create("alice")
    studio.stop()
    legacy = SqliteDatabase(str(workspace / "studio.db"))  # a table only some other feature knows
    legacy.execute_sql("CREATE TABLE scene_notes (id INTEGER PRIMARY KEY, scene TEXT, note TEXT)")
    legacy.execute_sql("INSERT INTO scene_notes (scene, note) VALUES ('s1', '青云门'), ('s2', '韩立')")
    legacy.close()

    database_url, queue_url = team_urls
    cmd = [sys.executable, str(ROOT / "launch.py"), "migrate", "--to-team", "--workspace", str(workspace),
           "--database-url", database_url, "--queue-url", queue_url]
    env = {**os.environ, "XIANYING_SECRETS": str(workspace.parent / "secrets.yaml")}
    for _ in range(2):  # the second run finds every row already there
        out = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "'jobs': 3" in out.stdout and "'scene_notes': 2" in out.stdout and "'api_keys': 1" in out.stdout

    team = load_settings(workspace, database_url=database_url, queue_url=queue_url)
    database = open_db(team)
    try:
        with database.connection_context():
            rows = {j.id: j for j in Job.select()}
            assert rows[done.id].status == "succeeded" and rows[done.id].outputs == Job.get_by_id(done.id).outputs
            assert rows[queued.id].status == "queued" and rows[running.id].status == "queued"
            notes = database.execute_sql("SELECT scene, note FROM scene_notes ORDER BY id").fetchall()
            assert notes == [("s1", "青云门"), ("s2", "韩立")]
            database.execute_sql("INSERT INTO scene_notes (scene, note) VALUES ('s3', '新')")  # sequence moved on
            from app.api.models import ApiKey

            assert ApiKey.select().count() == 1 and key not in str(list(ApiKey.select().dicts()))
        queue = JobQueue(team.queue_dir, lambda *a: None, gpu_workers=0, io_workers=0, settings=team)
        assert queue.pending_job_ids("gpu") >= {queued.id, running.id}
        queue.close()
    finally:
        database.close_all()
