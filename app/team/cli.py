"""``launch.py worker`` and ``launch.py migrate --to-team`` (team mode; see docs/team.md).

    python launch.py worker --database-url postgresql://... --queue-url redis://host:6379/0 \\
        --studio-url http://studio:7860 --api-key xy_... [--lanes gpu,io] [--gpus 0,1] [--workspace DIR]
    python launch.py migrate --to-team --database-url postgresql://... [--queue-url ...] [--workspace DIR]

URLs and the key may come from the environment instead (XIANYING_DATABASE_URL,
XIANYING_QUEUE_URL, XIANYING_API_KEY), which keeps passwords out of the process list.
``--gpus 0,1`` starts one worker process per GPU (each sees only its own, through
``CUDA_VISIBLE_DEVICES``) and supervises them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading

from app import winstop
from app.backends import redact
from core.platform import group_kwargs, kill_tree, send_stop, stop_signals

log = logging.getLogger(__name__)


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:  # launch.py's one subcommand group (keys_cli made it)
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="command")


def add_commands(parser: argparse.ArgumentParser) -> None:
    commands = _subparsers(parser)
    commands.metavar = "{keys,worker,migrate}"
    worker = commands.add_parser("worker", help="run queue consumers only (team mode): no UI")
    worker.add_argument("--workspace", default=argparse.SUPPRESS, help="this worker's folder (models, scratch)")
    worker.add_argument("--lanes", default="gpu", help="lanes to serve: gpu, io or gpu,io (default gpu)")
    worker.add_argument("--gpus", default="", help="GPU ids, e.g. 0,1: one worker process per GPU")
    worker.add_argument("--studio-url", default=os.environ.get("XIANYING_STUDIO_URL"),
                        help="the studio to upload results to (http://host:7860)")
    worker.add_argument("--api-key", default=None, help="an admin API key of the studio (or XIANYING_API_KEY)")
    worker.add_argument("--queue-url", default=None, help="redis://... or postgresql://... (or XIANYING_QUEUE_URL)")
    worker.add_argument("--database-url", default=None, help="postgresql://... (or XIANYING_DATABASE_URL)")
    worker.add_argument("--shared-outputs", action="store_true",
                        help="--workspace is the studio's own (a shared mount): write outputs there, no upload")
    migrate = commands.add_parser("migrate", help="copy an embedded workspace into team mode (Postgres)")
    migrate.add_argument("--to-team", action="store_true", required=True)
    migrate.add_argument("--workspace", default=argparse.SUPPRESS, help="the workspace to migrate")
    migrate.add_argument("--database-url", default=None, help="postgresql://... (or XIANYING_DATABASE_URL)")
    migrate.add_argument("--queue-url", default=None, help="redis://... (default: the Postgres database)")


def run(args: argparse.Namespace) -> int:
    from core.errors import AppError

    logging.basicConfig(level=str(getattr(args, "log_level", "INFO")).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("huey", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "migrate":
            return _migrate(args)
        return _worker(args)
    except AppError as exc:
        print(f"{exc.en}\n{exc.zh}", file=sys.stderr)
        return 2


def _settings(args):
    from app.settings import load_settings

    overrides = {"queue_url": args.queue_url, "database_url": args.database_url}
    return load_settings(getattr(args, "workspace", None), **overrides)


def _migrate(args) -> int:
    from core.errors import ConfigError

    from .migrate import migrate_to_team

    settings = _settings(args)
    url = args.database_url or os.environ.get("XIANYING_DATABASE_URL")
    if not url:
        raise ConfigError("migrate --to-team needs --database-url postgresql://...",
                          "migrate --to-team 需要 --database-url postgresql://...")
    # the source is the workspace's own SQLite file, whatever config.yaml says now
    source = settings.model_copy(update={"database_url": None, "queue_url": None})
    counts = migrate_to_team(source, url, args.queue_url or os.environ.get("XIANYING_QUEUE_URL"))
    print(f"Migrated {settings.db_path} to {redact(url)}: {counts}")
    print("Next: set database_url (and queue_url) in config.yaml, start the studio, then the workers.\n"
          "下一步：在 config.yaml 中设置 database_url（和 queue_url），启动工作室，再启动工作机。")
    return 0


def _worker(args) -> int:
    gpus = [g.strip() for g in (args.gpus or "").split(",") if g.strip()]
    if len(gpus) > 1:
        return _supervise(gpus)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[0]
    lanes = [lane.strip() for lane in args.lanes.split(",") if lane.strip()]
    from core.errors import ConfigError

    if not lanes or set(lanes) - {"gpu", "io"}:
        raise ConfigError("--lanes takes gpu, io or gpu,io.", "--lanes 取值为 gpu、io 或 gpu,io。")
    settings = _settings(args)
    team = settings.team.model_copy(update={k: v for k, v in {
        "studio_url": args.studio_url, "shared_outputs": True if args.shared_outputs else None}.items()
        if v is not None})
    update: dict = {"team": team}
    if gpus:  # this process sees only its card (CUDA_VISIBLE_DEVICES): config gpu_ids would name others
        update["gpu_pool"] = settings.gpu_pool.model_copy(update={"gpu_ids": []})
    settings = settings.model_copy(update=update)
    from .worker import WorkerProcess

    worker = WorkerProcess(settings, lanes=lanes, gpus=[int(g) for g in gpus],
                           api_key=args.api_key or os.environ.get("XIANYING_API_KEY"))
    stop = threading.Event()
    for sig in stop_signals():  # SIGINT, SIGTERM and SIGBREAK (Windows) or SIGHUP (POSIX)
        signal.signal(sig, lambda s, f: stop.set())
    winstop.install(stop.set, stopped := threading.Event())  # console closed, log-off (Windows)
    worker.start()
    print(f"仙影 worker {worker.member.id}: lanes {','.join(lanes)}, database {redact(settings.database_url)}, "
          f"queue {redact(settings.queue_url or settings.database_url)} (Ctrl-C to stop)", flush=True)
    while not stop.wait(0.5):  # a bare wait() never lets Ctrl-C's handler run on Windows
        pass
    worker.stop()
    stopped.set()
    print("worker stopped. 工作机已退出。", flush=True)
    return 0


def _supervise(gpus: list[str], grace: float = 60.0) -> int:
    """One child worker per GPU, each in its own process group; a stop (SIGTERM, SIGINT, Ctrl-Break)
    is passed on as the child's own stop signal (Ctrl-Break on Windows); a child still running
    ``grace`` seconds later is killed with its process tree. Exits when all children have."""
    argv = list(sys.argv)
    i = argv.index("--gpus") if "--gpus" in argv else -1
    if i >= 0:
        del argv[i:i + 2]
    else:
        argv = [a for a in argv if not a.startswith("--gpus=")]
    children = [subprocess.Popen([sys.executable, *argv, "--gpus", g], **group_kwargs()) for g in gpus]
    stopping, done = threading.Event(), threading.Event()

    def forward(sig=None, frame=None):
        stopping.set()
        for child in children:
            send_stop(child)

    for sig in stop_signals():
        signal.signal(sig, forward)
    winstop.install(forward, done, grace=grace)
    while any(child.poll() is None for child in children) and not stopping.wait(0.5):
        pass
    for child in children:
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("worker process %s did not stop within %.0f s; killing it", child.pid, grace)
            kill_tree(child)
    done.set()
    return max((child.returncode for child in children), default=0)
