"""Cloud chains in a process of their own (``queue.cloud_process``, on by default).

The studio's server and its cloud chains (``app/cloud_chain.py``) used to share one Python process,
so one core (the GIL): 500 jobs polling a slow vendor took the CPU the UI needed, and ``/status``
answered 20x slower than at rest. Now the io worker that takes a cloud job's step off the queue
hands its id to a child process (``multiprocessing`` *spawn*, as ``app/isolation.py`` does). The
child builds the same engines and runner from the settings and runs that step with the runner's
own code (``JobRunner.execute``: claim, poll turn, then the chain on its own event loop), against
the same database and the same create journals. Nothing else changes hands:

* the row is the truth: every write is the runner's (``app/jobstate.py``), and a cancel is a row
  change the chain reads before each step;
* the parent keeps the queue and counts the steps it handed over (``handed``); the child says
  ``ended`` once for each, when its chain ends or at once when none began;
* a studio stop asks the child to stop (its chains are cut where they stand, as by a stop in
  one process) and kills it if it has not exited after ``STOP_S``; the next start resumes
  each job from its row and its journal;
* a child that dies on its own (killed, out of memory) is replaced, and each job it moved is
  handed again to the new one through the queue (a create resumes from its journal, so the vendor
  sees no second create); after ``MAX_FAILED_STARTS`` children in a row die before they are ready,
  the studio runs the chains in its own process again, and says so in the log;
* a child whose studio was killed (kill -9) sees its pipe close and exits;
* ``queue.cloud_processes`` children (one by default) can share the jobs, each job always in the
  same one (by its id), each with its share of the per-vendor request bound;
* the child runs at a lower priority (``core.platform.lower_priority``): when the machine is busy,
  the server answering the UI and the API gets the CPU first.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import zlib
from collections import Counter

log = logging.getLogger(__name__)

STOP_S = 5.0  # a stopping child that has not exited by then is killed
MAX_FAILED_STARTS = 3  # children dead before saying "ready": then the chains run in the studio's own process


def wanted(settings, *, injected: bool) -> bool:
    """The studio runs its chains in a child: async chains on, a local (not team) workspace, and
    engines built from the settings (tests that inject engines cannot send them to a process)."""
    from engines.cloud import aio

    from .backends import is_team

    queue = settings.queue
    return bool(queue.cloud_process) and aio.enabled(settings) and not injected and not is_team(settings)


class CloudHost:
    """The parent's side: ``queue.cloud_processes`` children (one by default). A job always goes to
    the same one (its id's hash), so a step re-sent while its chain runs finds that chain."""

    def __init__(self, runner):
        count = runner.settings.queue.cloud_processes
        self.children = [CloudProcess(runner, slot, count) for slot in range(count)]

    def child(self, job_id: str) -> CloudProcess:
        return self.children[zlib.crc32(job_id.encode("utf-8")) % len(self.children)]

    def hand(self, job_id: str, token: int | None) -> bool:
        return self.child(job_id).hand(job_id, token)

    def hand_new(self, job_ids: list[str]) -> list[str]:
        """New jobs' first steps, each child's share in one message, to children that run now (none
        is started for them): the ids left for the queue (those of a child that is not running)."""
        shares: dict[CloudProcess, list[str]] = {}
        for job_id in job_ids:
            shares.setdefault(self.child(job_id), []).append(job_id)
        return [job_id for child, share in shares.items() if not child.hand_new(share) for job_id in share]

    def start(self) -> None:
        for child in self.children:
            child.start()

    def close(self, timeout: float = STOP_S) -> None:
        for child in self.children:  # all are asked first, then each is waited for
            child.closing = True
        threads = [threading.Thread(target=child.close, args=(timeout,)) for child in self.children]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # the only child's, when there is one (tests, logs)
    @property
    def pid(self) -> int | None:
        return self.children[0].pid

    @property
    def ready(self) -> threading.Event:
        return self.children[0].ready

    @property
    def handed(self) -> Counter:
        return sum((child.handed for child in self.children), Counter())


class CloudProcess:
    """One child process, the pipe to it, and the thread that hears it."""

    def __init__(self, runner, slot: int = 0, count: int = 1):
        self.runner = runner
        self.settings = runner.settings
        self.slot, self.count = slot, count
        self._lock = threading.Lock()
        self._process = None
        self._commands = None  # parent -> child
        self._listener: threading.Thread | None = None
        self._started = 0.0
        self._failed_starts = 0
        self.closing = False
        self.failed = False  # too many failed starts: chains run in this process (app/cloud_chain.py)
        self.ready = threading.Event()
        self.pid: int | None = None
        self.handed: Counter[str] = Counter()  # steps the child holds, per job (each ends with one "ended")

    # --- the io worker's side --------------------------------------------------------------
    def hand(self, job_id: str, token: int | None) -> bool:
        """Give the child this step of a cloud job (it claims the job and runs its chain); False: run
        it here instead (the child cannot start, or the studio is stopping)."""
        with self._lock:
            if self.failed or self.closing:
                return False
            if self._process is None or not self._process.is_alive():
                self._start()
            self._send([job_id], (job_id, token))
        return True

    def hand_new(self, job_ids: list[str]) -> bool:
        """New jobs' first steps in one message, while the child runs (False: the queue takes them, and
        an io worker hands each one over, starting a child if need be)."""
        with self._lock:
            if self.failed or self.closing or self._process is None or not self._process.is_alive():
                return False
            self._send(job_ids, [(job_id, None) for job_id in job_ids])
        return True

    def _send(self, job_ids: list[str], message) -> None:
        """(Under the lock.) Count the steps handed over, then send them: a child that died just now has
        them handed on again by its listener."""
        for job_id in job_ids:
            self.handed[job_id] += 1
        try:
            self._commands.send(message)
        except (OSError, ValueError):
            log.warning("cloud process pipe closed while handing over %d step(s)", len(job_ids))

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._process is None and not self.failed:
                self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        commands_in, commands = ctx.Pipe(duplex=False)
        events, events_out = ctx.Pipe(duplex=False)
        level = logging.getLogger().getEffectiveLevel()
        process = ctx.Process(target=child_main, name=f"xianying-cloud-{self.slot}", daemon=True,
                              args=(self.settings.model_dump(mode="json"), self.runner.owner, level,
                                    commands_in, events_out, self.count))
        process.start()
        commands_in.close()  # the child holds these ends now: its death closes the pipe here
        events_out.close()
        self.ready.clear()
        self._process, self._commands, self._started = process, commands, time.monotonic()
        self.pid = process.pid
        self._listener = threading.Thread(target=self._listen, args=(process, events), name="cloud-host",
                                          daemon=True)
        self._listener.start()

    def _listen(self, process, events) -> None:
        """Hear the child until its pipe closes, then reap it (this thread alone waits for it)."""
        while True:
            try:
                kind, value = events.recv()
            except (EOFError, OSError):
                break
            if kind == "ready":
                self.ready.set()
            elif kind == "ended":
                with self._lock:
                    self.handed[value] -= 1
                    if self.handed[value] <= 0:
                        del self.handed[value]
        process.join()
        events.close()
        if self.closing:
            return
        self._died(process)

    def _died(self, process) -> None:
        """The child is gone while the studio runs: replace it and hand its jobs over again."""
        with self._lock:
            if process is not self._process:
                return
            lived = time.monotonic() - self._started
            log.warning("the cloud process (pid %s) exited (code %s) after %.1f s; starting another",
                        process.pid, process.exitcode, lived)
            self._failed_starts = 0 if self.ready.is_set() else self._failed_starts + 1
            self._process = None
            if self._failed_starts >= MAX_FAILED_STARTS:
                self.failed = True
                log.error("the cloud process failed to start %d times: cloud jobs run in the studio's process",
                          self._failed_starts)
            else:
                self._start()
            lost = set(self.handed)
            self.handed.clear()
        self.runner.resume(lost)

    def close(self, timeout: float = STOP_S) -> None:
        """Studio stop: the child cuts its chains where they stand and exits (killed if it does not)."""
        with self._lock:
            self.closing = True
            process, commands, listener = self._process, self._commands, self._listener
            self._process = None
        if process is None:
            return
        try:
            commands.send(None)
        except (OSError, ValueError):
            pass
        listener.join(timeout)  # it returns once the child has exited and been reaped
        if listener.is_alive():
            log.warning("the cloud process did not stop within %.0f s; killing it", timeout)
            process.kill()
            listener.join(2.0)
        commands.close()
        self.handed.clear()


# --- the child ------------------------------------------------------------------------------------
BATCH = 64  # steps the child takes off its pipe's queue at once


def _next_steps(todo) -> tuple[list, bool]:
    """The steps waiting for the child, up to ``BATCH`` (it waits for the first): ``(steps, stop)``. A
    stop (None) ends the batch; the steps before it still run, as one by one they would have."""
    import queue

    item = todo.get()
    if item is None:
        return [], True
    batch = [item]
    while len(batch) < BATCH:
        try:
            item = todo.get_nowait()
        except queue.Empty:
            return batch, False
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False

def child_main(settings_data: dict, owner: str, level: int, commands, events, count: int = 1) -> None:
    """Entry point of the cloud process: build engines and a runner, then run the chains it is handed.
    ``count``: cloud processes in all; each takes its share of the per-vendor request bound."""
    import queue

    from engines.cloud import http

    # one completion thread: the chains' database writes and files take turns there anyway (one SQLite
    # writer), and each more thread wanting the GIL cost CPU in the kernel (bench/cloud.py: 17 ms of CPU
    # per job instead of 22 with 4)
    os.environ.setdefault("XIANYING_CLOUD_COMPLETION_THREADS", "1")
    os.environ["XIANYING_CLOUD_CONCURRENCY"] = str(max(1, http._env_int("XIANYING_CLOUD_CONCURRENCY", 64) // count))

    from core.platform import lower_priority

    from .isolation import listen_to_studio

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the studio's to handle
    lower_priority()  # the UI's process comes first when both want the CPU
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s cloud %(name)s: %(message)s")
    for noisy in ("huey", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    todo: queue.SimpleQueue = queue.SimpleQueue()
    send_lock = threading.Lock()

    def send(kind: str, value) -> None:
        with send_lock:
            try:
                events.send((kind, value))
            except (OSError, ValueError):
                pass

    def handle(message) -> bool:
        if isinstance(message, list):  # new jobs' first steps, handed together (CloudProcess.hand_new)
            for step in message:
                todo.put(step)
            return True
        todo.put(message)
        return message is not None  # None: stop

    listen_to_studio(commands, handle)

    from engines.cloud import aio
    from engines.local.weights import PipelineCache
    from engines.registry import build_engines

    from .db import keep_connection, open_db
    from .jobs import JobService
    from .runner import JobRunner
    from .secrets import SecretStore
    from .settings import Settings

    settings = Settings.model_validate(settings_data)
    open_db(settings)
    keep_connection()  # this thread claims every step: one connection for all (opening one per step was
    # most of a claim's 5 ms)
    engines = build_engines(settings, SecretStore(settings.secrets_file), PipelineCache(0))
    class Chains(set):
        """``runner.chains`` that counts the chains begun here."""

        begun = 0

        def add(self, run) -> None:
            self.begun += 1
            super().add(run)

    runner = JobRunner(JobService(settings, engines))
    runner.owner = owner  # its claims read as the studio's own
    runner.chains = Chains()
    runner.on_chain_end = lambda job_id: send("ended", job_id)  # the step that began a chain ends with it
    aio.retain()
    import gc

    gc.collect()
    gc.freeze()  # what was built so far lives as long as the process: collections no longer walk it
    send("ready", os.getpid())
    stop = False
    while not stop:
        batch, stop = _next_steps(todo)
        first = [job_id for job_id, token in batch if token is None]
        if len(first) > 1:
            try:  # one write claims them all: each claim's own write was three GIL hand-overs on a busy process
                runner.claim_chains(first)
            except Exception:  # each step below claims its own job then
                log.exception("cloud process: claiming %d jobs failed", len(first))
        for job_id, token in batch:
            begun = runner.chains.begun
            try:
                runner.execute(job_id, token)  # claim (unless claimed above), poll turn, then the chain
            except Exception:  # a bug here must not end the other chains
                log.exception("cloud process: step of job %s failed", job_id)
            if runner.chains.begun == begun:  # no chain began: this step ends here
                send("ended", job_id)
    runner.stopping.set()
    aio.release()
    sys.exit(0)
