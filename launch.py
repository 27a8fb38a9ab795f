"""Start Xianying Studio: the job database, the queue workers and the UI/API server.

    python launch.py [--host 127.0.0.1] [--port 7860] [--workspace ./workspace] [--no-browser]

Ctrl-C / SIGTERM stop cleanly: running local jobs stop at their next step and go back to
the queue, cloud jobs resume polling at the next start; nothing is half-written. So do
Ctrl-Break, closing the console window and logging off on Windows, and SIGHUP on POSIX
(``core.platform.stop_signals``, ``app.winstop``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import webbrowser
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="xianying", description="Xianying Studio (仙影) — local AI video studio")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--workspace", default=None,
                        help="data folder (default ./workspace, or $XIANYING_HOME; "
                             "the desktop app uses the user's data folder)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    parser.add_argument("--log-level", default=os.environ.get("XIANYING_LOG_LEVEL", "INFO"))
    from app.api.keys_cli import add_parser  # `launch.py keys create|list|revoke`

    add_parser(parser)
    from app.team.cli import add_commands  # `launch.py worker ...` · `launch.py migrate --to-team ...`

    add_commands(parser)
    return parser.parse_args(argv)


def open_browser_when_ready(server, url: str) -> None:
    def wait_and_open():
        for _ in range(600):
            if server.started:
                webbrowser.open(url)
                return
            time.sleep(0.1)

    threading.Thread(target=wait_and_open, daemon=True, name="open-browser").start()


def redirect_missing_output(workspace: Path) -> None:
    """Windowed builds (and pythonw) have no console: sys.stdout/stderr are None, which breaks
    print() and uvicorn's log formatter. Send both to ``<workspace>/logs/xianying.log``."""
    if sys.stdout is not None and sys.stderr is not None:
        return
    (workspace / "logs").mkdir(parents=True, exist_ok=True)
    stream = open(workspace / "logs" / "xianying.log", "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    sys.stdout = sys.stdout or stream
    sys.stderr = sys.stderr or stream
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler and handler.stream is None:  # consoles, not files
            handler.setStream(stream)


def keep_caches_in_workspace(workspace: Path) -> None:
    """Gradio's upload cache and torch's compile caches go under ``<workspace>/cache`` instead
    of the system temp dir or home (set before Gradio/torch are imported; env still wins)."""
    cache = workspace / "cache"
    os.environ.setdefault("GRADIO_TEMP_DIR", str(cache / "gradio"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "torchinductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(cache / "triton"))


def first_start(settings) -> None:
    """A new workspace gets a commented ``config.yaml`` with every setting at its default."""
    from core.media import atomic_write_bytes
    from app.settings import default_config_text

    cfg = settings.workspace / "config.yaml"
    if not cfg.exists():
        atomic_write_bytes(cfg, default_config_text().encode("utf-8"))
    # (the sample project is copied by Studio: profiles.samples.install_samples)


def end_streams_on_exit(server) -> None:
    """Open browser tabs and API clients hold Gradio heartbeat streams; uvicorn would wait out
    its grace period for them and then log a cancelled-task traceback. Gradio ends them when
    its app's ``stop_event`` is set, so set it as soon as a stop is asked for."""
    handle_exit = server.handle_exit

    def stop_then_exit(sig, frame):
        for route in getattr(server.config.app, "routes", ()):
            stop_event = getattr(getattr(route, "app", None), "stop_event", None)
            if stop_event is not None:
                stop_event.set()
        handle_exit(sig, frame)

    server.handle_exit = stop_then_exit


def _exit_cleanly(signum, frame):
    raise SystemExit(0)


def stop_on_every_exit_path(server) -> threading.Event:
    """Every way the user or the system ends the studio asks uvicorn to shut down (which stops the
    studio in its lifespan) and then exits 0. Set the returned event once it has stopped: Windows
    waits for it before ending the process on console close / log-off."""
    from app import winstop
    from core.platform import stop_signals

    def request_stop(*_):
        server.handle_exit(signal.SIGTERM, None)  # uvicorn re-raises SIGTERM when done: exit 0

    hangup = getattr(signal, "SIGHUP", None)  # the terminal closed: uvicorn does not take it
    for sig in stop_signals():
        if sig != signal.SIGINT:  # (SIGINT ends as KeyboardInterrupt, caught in main)
            signal.signal(sig, request_stop if sig == hangup else _exit_cleanly)
    stopped = threading.Event()
    winstop.install(request_stop, stopped)
    return stopped


def main(argv=None) -> int:
    from core.platform import make_console_safe, workspace_warnings

    make_console_safe()  # Chinese in prints and logs under a GBK console or a redirected stdout
    args = parse_args(argv)
    if args.command == "keys":
        from app.api.keys_cli import run

        return run(args)
    if args.command in ("worker", "migrate"):
        from app.team.cli import run as run_team

        return run_team(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    import uvicorn

    from core.errors import AppError
    from app.server import create_app
    from app.settings import load_settings
    from app.studio import Studio

    try:
        settings = load_settings(args.workspace, host=args.host, port=args.port)
        redirect_missing_output(settings.workspace)
        keep_caches_in_workspace(settings.workspace)
        first_start(settings)
        for en, zh in workspace_warnings(settings.workspace):
            logging.getLogger("xianying").warning("%s\n%s", en, zh)
        studio = Studio(settings)
        app = create_app(studio)  # refuses a non-loopback host without API keys
    except AppError as exc:
        print(f"Xianying Studio cannot start: {exc.en}\n仙影无法启动：{exc.zh}", file=sys.stderr)
        return 2
    import gc

    gc.collect()
    gc.freeze()  # the UI's object graph is built once: later collections no longer walk it (p99 pauses)
    sys.setswitchinterval(0.001)  # a request on the server's loop waits 1 ms, not 5, for the GIL a worker holds
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=5, lifespan="on")
    server = uvicorn.Server(config)
    end_streams_on_exit(server)
    print(f"仙影 Xianying Studio: {url}  (workspace: {settings.workspace}; Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        open_browser_when_ready(server, url)
    # uvicorn re-raises the signal it caught once it has shut down; exit 0 instead of dying by it
    stopped = stop_on_every_exit_path(server)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        stopped.set()
    print("Xianying Studio stopped. 仙影已退出。", flush=True)
    return 0


if __name__ == "__main__":
    import multiprocessing

    multiprocessing.freeze_support()
    sys.exit(main())
