"""Local jobs in a worker process the studio can end at once (``gpu_pool.isolation: process``).

A diffusion step cannot be interrupted from inside: the engines check ``cancelled()`` between
steps, and one step of a large video on a CPU can take minutes. So each gpu-lane worker thread
of the studio hands its local jobs to a child process of its own (``multiprocessing`` *spawn*,
never fork) that builds its engines from the settings and runs the ordinary ``JobRunner`` code
against the same database: claim, progress and publish are fenced as in the thread mode, and
the child claims under the studio's own lease owner.

The thread waits for the child while watching the job row. On a cancel, or when the studio
stops, the child first gets ``gpu_pool.kill_after_s`` (default 2 s) to stop at its next step on
its own (it keeps its warm models then); after that the whole process group is killed, the job
is recorded cancelled (on a stop: back to ``queued``, its attempt not counted) by the same
fenced transitions the runner uses, and a fresh child is started for the next job. The price of
such a hard stop: the killed child's warm models are gone, so the next local job loads its
model again. A child that dies on its own (the system ran out of memory, a crash in a native
library) fails its job with a message that says so. A child whose studio was killed (kill -9)
notices its pipe closing and exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time

from core.errors import AppError, Cancelled

from .db import TERMINAL, Job, connection

log = logging.getLogger(__name__)

KILL_SIGNAL = 9  # SIGKILL (the signal module has no SIGKILL on Windows)
WATCH_S = 0.2  # how often the waiting thread looks at the job row and the child
START_S = 300.0  # a child that has not said "ready" by then is replaced


class Child:
    """One worker process and the two pipes to it (commands in, events out)."""

    def __init__(self, settings, owner: str, slot: int):
        ctx = multiprocessing.get_context("spawn")
        commands_in, self.commands = ctx.Pipe(duplex=False)
        self.events, events_out = ctx.Pipe(duplex=False)
        level = logging.getLogger().getEffectiveLevel()
        self.process = ctx.Process(target=child_main, name=f"xianying-gpu-{slot}", daemon=True,
                                   args=(settings.model_dump(mode="json"), owner, slot, level,
                                         commands_in, events_out))
        self.process.start()
        self.started = time.monotonic()
        self.ready = False  # said "ready": its engines are built
        commands_in.close()  # the child holds these ends now: its death closes the pipe here
        events_out.close()
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, *message) -> bool:
        try:
            self.commands.send(message)
            return True
        except (OSError, ValueError):  # the child is gone
            return False

    def kill(self) -> None:
        """End the child and anything it started: its process group on POSIX (it leads its own),
        ``taskkill /T`` on Windows (``core.platform.kill_tree``)."""
        from core.platform import kill_tree

        kill_tree(_AsPopen(self.process))
        self.close()

    def close(self) -> None:
        for conn in (self.commands, self.events):
            try:
                conn.close()
            except OSError:
                pass


class _AsPopen:
    """A ``multiprocessing.Process`` with the ``Popen`` methods ``kill_tree`` uses."""

    def __init__(self, process):
        self.process = process
        self.pid = process.pid

    def poll(self):
        return self.process.exitcode

    def kill(self) -> None:
        self.process.kill()

    def wait(self) -> None:
        self.process.join(10)


class ProcessIsolation:
    """The children of a studio's gpu lane: one per worker thread, started on its first job."""

    def __init__(self, runner):
        self.runner = runner
        self.settings = runner.settings
        self.grace_s = self.settings.gpu_pool.kill_after_s
        self.children: dict[int, Child] = {}  # slot -> child
        self._slots: dict[int, int] = {}  # worker thread -> slot
        self._lock = threading.Lock()
        self.kills = 0  # hard stops so far (each one cost a fresh process and its model loads)

    def slot(self) -> int:
        ident = threading.get_ident()
        with self._lock:
            return self._slots.setdefault(ident, len(self._slots))

    def child(self, slot: int | None = None) -> Child:
        """This worker thread's child, started (or replaced, if it died) now."""
        slot = self.slot() if slot is None else slot
        child = self.children.get(slot)
        if child is None or not child.alive():
            if child is not None:
                child.close()
            child = self.children[slot] = Child(self.settings, self.runner.owner, slot)
            log.info("gpu worker %s: started worker process %s", slot, child.pid)
        return child

    # --- one job -----------------------------------------------------------------------
    def run(self, job_id: str, token: int | None = None) -> None:
        """Run ``job_id`` in this thread's child; return when it is done, cancelled or requeued."""
        if self.runner.stopping.is_set():
            return  # the row stays queued; the next start enqueues it first
        slot = self.slot()
        child = self.child(slot)
        if not child.send("run", job_id, token):
            child = self.replace(slot, child, kill=True)
            child.send("run", job_id, token)
        deadline, why = None, None
        while True:
            event = self._next_event(child)
            if event is not None:
                if event[0] == "ready":
                    child.ready = True
                elif event[0] == "done" and event[1] == job_id:
                    return
                continue  # a "done" left from a job this thread stopped waiting for
            if not child.alive():
                self._died(job_id, child)
                self.replace(slot, child, kill=False)
                return
            now = time.monotonic()
            if deadline is None:
                state = self._row_state(job_id)
                if self.runner.stopping.is_set():
                    why, deadline = "stop", now + self.grace_s
                    child.send("stop")  # a step boundary comes first if it is near
                elif state == "cancel":
                    why, deadline = "cancel", now + self.grace_s
                elif state == "over":  # cancelled before it started: the child will skip it
                    return
                elif not child.ready and now - child.started > START_S:
                    why, deadline = "start", now
            if deadline is not None and now >= deadline:
                child.kill()
                self.kills += 1
                log.warning("job %s: worker process %s ended (%s after %.1f s)", job_id, child.pid, why,
                            self.grace_s)
                self._after_kill(job_id, why)
                if not self.runner.stopping.is_set():
                    self.replace(slot, child, kill=False)  # warm up a fresh one for the next job
                else:
                    self.children.pop(slot, None)
                return

    def _next_event(self, child: Child):
        try:
            if child.events.poll(WATCH_S):
                return child.events.recv()
        except (EOFError, OSError):
            time.sleep(WATCH_S)  # the child is gone: alive() says so next
        return None

    def replace(self, slot: int, old: Child, *, kill: bool) -> Child:
        if kill:
            old.kill()
        else:
            old.close()
        self.children.pop(slot, None)
        return self.child(slot)

    @staticmethod
    def _row_state(job_id: str) -> str | None:
        """``cancel``: running, cancel asked; ``over``: gone or finished before it ran here."""
        with connection():
            row = Job.select(Job.cancel_requested, Job.status).where(Job.id == job_id).first()
        if row is None or row.status in TERMINAL:
            return "over"
        return "cancel" if row.status == "running" and row.cancel_requested else None

    # --- after the child is gone -------------------------------------------------------
    def _held(self, job_id: str) -> Job | None:
        """The row, if the (dead) child still holds it: running under this studio's owner."""
        row = Job.get_or_none(Job.id == job_id)
        if row is None or row.status != "running" or row.lease_owner != self.runner.owner:
            return None
        return row

    def _after_kill(self, job_id: str, why: str) -> None:
        with connection():
            row = self._held(job_id)
            if row is not None:  # the fence read here is the child's: nothing else can hold it now
                if why == "stop" and not row.cancel_requested:
                    self.runner.requeue(row, "the studio stopped; it will run again first at the next start")
                elif why == "start":
                    self.runner.fail(row, AppError("The local worker process did not start in time.",
                                                    "本地工作进程未能及时启动。"))
                else:
                    self.runner.fail(row, Cancelled(
                        "Cancelled: its run was stopped mid-step (the model is loaded again for the next job).",
                        "已取消：运行在步骤中途被终止（下一个任务会重新加载模型）。"), status="cancelled")
            elif why == "cancel":  # cancelled before the child claimed it: the service already said so
                pass
        shutil.rmtree(self.runner.workdir(job_id), ignore_errors=True)

    def _died(self, job_id: str, child: Child) -> None:
        code = child.process.exitcode
        if self.runner.stopping.is_set():
            self._after_kill(job_id, "stop")
            return
        how = (f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}")
        killed = code == -KILL_SIGNAL  # what the kernel's out-of-memory killer sends (POSIX)
        hint_en = " (often: the system ran out of memory)" if killed else ""
        hint_zh = "（常见原因：系统内存不足）" if killed else ""
        log.error("job %s: worker process %s %s", job_id, child.pid, how)
        exc = AppError(f"The local worker process {how} while running this job{hint_en}. "
                       "Retry it, or lower its size or frames.",
                       f"本地工作进程在运行此任务时意外退出（{how}）{hint_zh}。请重试，或降低分辨率或帧数。")
        with connection():
            row = self._held(job_id)
            if row is None:  # it died before claiming the job: fail the queued row instead of looping
                row = Job.get_or_none(Job.id == job_id)
                if row is None or row.status != "queued":
                    return
            self.runner.fail(row, exc)

    # --- studio stop -------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Ask idle children to exit; kill what is still there after ``timeout``."""
        children, self.children = list(self.children.values()), {}
        for child in children:
            child.send("exit")
        deadline = time.monotonic() + timeout
        for child in children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.alive():
                child.kill()
            else:
                child.close()


# --- the child -------------------------------------------------------------------------------
def listen_to_studio(commands, handle) -> None:
    """A child process's pipe from its studio, read on a daemon thread: ``handle(message)`` for each
    message, until it returns False. When the studio is gone (killed), so is the child."""

    def listen() -> None:
        while True:
            try:
                message = commands.recv()
            except (EOFError, OSError):
                os._exit(0)
            if not handle(message):
                return

    threading.Thread(target=listen, name="studio-pipe", daemon=True).start()


def child_main(settings_data: dict, owner: str, slot: int, level: int, commands, events) -> None:
    """Entry point of a worker process: build the engines, then run jobs as told."""
    import queue

    if hasattr(os, "setpgrp"):  # its own process group: the studio kills it with everything it started
        os.setpgrp()  # posix-ok: guarded; on Windows kill_tree uses taskkill /T instead
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the studio's to handle
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s gpu-{slot} %(name)s: %(message)s")
    logging.getLogger("huey").setLevel(logging.WARNING)

    jobs: queue.Queue = queue.Queue()
    stopping = threading.Event()

    def handle(message) -> bool:
        if message[0] == "run":
            jobs.put(message[1:])
        elif message[0] == "stop":
            stopping.set()
        elif message[0] == "exit":
            jobs.put(None)
        return True

    listen_to_studio(commands, handle)
    try:  # progress bars would take a multiprocessing lock, which a kill leaves behind ("leaked semaphore")
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
    except ImportError:
        pass

    from engines.local.weights import PipelineCache
    from engines.registry import build_engines

    from .db import open_db
    from .jobs import JobService
    from .runner import JobRunner
    from .secrets import SecretStore
    from .settings import Settings

    settings = Settings.model_validate(settings_data)
    open_db(settings)
    cache = PipelineCache(int(settings.model_cache.max_size_gb * 2**30))
    engines = build_engines(settings, SecretStore(settings.secrets_file), cache)
    for engine in engines.values():  # this process's one thread owns the card of its slot
        devices = getattr(engine, "devices", None)
        if devices is not None:
            devices.claim(slot)
            break
    runner = JobRunner(JobService(settings, engines))
    runner.owner = owner  # leases read as the studio's: its fleet heartbeat renews them
    runner.stopping = stopping
    events.send(("ready", os.getpid()))
    while True:
        item = jobs.get()
        if item is None:
            break
        job_id, token = item
        try:
            runner.execute(job_id, token)
        except Exception:  # the runner records engine errors itself; this is a bug in it
            log.exception("job %s: runner error in worker process", job_id)
        try:
            events.send(("done", job_id))
        except OSError:
            break
    sys.exit(0)
