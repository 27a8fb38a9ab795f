"""What every keyed cloud adapter sets up the same way: its keys, its base URL, its create journal.

``KeyedCloudEngine`` is a ``CloudEngine`` configured in its class statement
(``class DashScopeEngine(KeyedCloudEngine, vendor=..., keys=..., base_env=..., default_base=...)``);
the values are kept as class attributes:

``VENDOR``        the vendor's name in messages (``"DashScope"``).
``KEYS``          the secret names it needs (``("DASHSCOPE_API_KEY",)``); ``needs`` is derived from them.
``BASE_ENV``      the environment variable that overrides the base URL (tests point it at a fake).
``DEFAULT_BASE``  the vendor's base URL.
``CONTENT_TYPE``  a ``Content-Type`` header sent with every request, when set.

``secret(name)``            the value from the studio's ``SecretStore`` (environment first, then the
                            secrets file), or from the environment when the engine has no store.
``key()``                   the first of ``KEYS``, or ``None``.
``missing_keys()``          the names of ``KEYS`` that are not set.
``require_keys()``          their values, or ``NotAvailable`` naming what to set (never a value).
``available()``             ``(False, what to set)`` while a key is missing.
``base_url()``              ``BASE_ENV`` or ``DEFAULT_BASE``, without a trailing slash.
``auth_headers(extra)``     ``Authorization: Bearer <key>``, ``Content-Type`` and ``extra``.
``journal``                 the engine's ``CreateJournal``, swept of old notes when the engine is built.

Creates: an adapter writes ``create_plan(request)`` (the task id it already has, or a
``safecreate.CreatePlan`` whose send and lookup are steps), and gets both ``start(request)`` (on an io
worker) and ``await astart(request)`` (on the cloud loop) with the same journal and guarantees.
Results: ``collect(state, request)`` and ``await acollect(state, request)`` download the same files
(``result_files``) with the same checks (``http.result_steps``). After a poll, ``after_poll`` /
``await aafter_poll`` run the adapter's ``task_ended(job_id)`` (its journal upkeep) once the task has
ended, on a file thread from the loop; a Retry of a cancelled job (or "Retry anyway") runs it too
(``JobService.retry``), so that the new run sends a create of its own instead of following the old task.
"""

from __future__ import annotations

import os
from typing import ClassVar, NamedTuple

from core.errors import NotAvailable
from engines.base import CloudEngine, Reason
from engines.cloud import safecreate, steps
from engines.cloud.journal import SWEEP_EVERY_S, CreateJournal


class ResultFile(NamedTuple):
    """One file of a finished task: its URL, ``video`` or ``image``, the output name's prefix and index,
    and the meta its ``Output`` carries."""

    url: str
    kind: str
    prefix: str
    index: int
    meta: dict


class KeyedCloudEngine(CloudEngine):
    VENDOR: ClassVar[str] = ""
    KEYS: ClassVar[tuple[str, ...]] = ()
    BASE_ENV: ClassVar[str] = ""
    DEFAULT_BASE: ClassVar[str] = ""
    CONTENT_TYPE: ClassVar[str | None] = None

    def __init_subclass__(cls, *, vendor: str | None = None, keys: tuple[str, ...] | None = None,
                          base_env: str | None = None, default_base: str | None = None,
                          content_type: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        given = {"VENDOR": vendor, "KEYS": keys, "BASE_ENV": base_env, "DEFAULT_BASE": default_base,
                 "CONTENT_TYPE": content_type}
        for name, value in given.items():
            if value is not None:
                setattr(cls, name, value)
        if not (cls.VENDOR and cls.KEYS and cls.BASE_ENV and cls.DEFAULT_BASE):
            raise TypeError(f"{cls.__name__} needs vendor=, keys=, base_env= and default_base= in its class statement")
        cls.needs = tuple(f"key:{name}" for name in cls.KEYS)

    def __init__(self, settings, secrets=None):
        super().__init__(settings, secrets)
        self.journal = CreateJournal(settings.workspace, self.id)
        self.journal.sweep()

    # --- creates: one plan, run blocking or on the cloud loop ----------------------------
    async_chain: ClassVar[bool] = False  # True: create_plan, apoll and acollect exist, so the runner may run
    # the job's create, polls and downloads as one chain on the cloud loop (app/cloud_chain.py)

    def create_plan(self, request):
        """The task id this job already has (answered before a crash), or the ``CreatePlan`` to send."""
        raise NotImplementedError

    def _start_steps(self, request):
        """The plan (it reads the journal and image files), then safecreate's create loop, as steps
        (``engines.cloud.steps``): on the loop, the plan and the loop's first journal write are one
        trip to a file thread (``aio.files``), not two."""
        plan = self.create_plan(request)
        if isinstance(plan, str):
            return plan
        return (yield from safecreate.create_steps(self.journal, request.job_id, plan))

    def start(self, request) -> str:
        return steps.run(self._start_steps(request))

    async def astart(self, request) -> str:
        """``start`` on the cloud loop (``engines.cloud.aio``): its requests are awaited on the loop, its
        journal notes written on file threads, where several jobs' fsyncs wait together."""
        from engines.cloud import aio

        return await steps.arun(self._start_steps(request), on=aio.files)

    # --- after a poll: the create note's upkeep once the task has ended ----------------
    def task_ended(self, job_id: str) -> None:
        """What the create journal keeps once the job is done with its task: the vendor says it ended, or a
        cancelled job is retried (DashScope forgets the note, Zhipu keeps its request-id generation); by
        default nothing."""

    def after_poll(self, state, request):
        """``state``, after ``task_ended`` when the task is no longer queued or running."""
        if state.status not in ("queued", "running"):
            self.task_ended(request.job_id)
        return state

    async def aafter_poll(self, state, request):
        """``after_poll`` from the cloud loop: the journal's file work (an unlink or an fsync waits on the
        disk) on a file thread, never on the loop."""
        from engines.cloud import aio

        if state.status not in ("queued", "running"):
            await aio.files(self.task_ended, request.job_id)
        return state

    # --- results: one download loop for every vendor ---------------------------------
    CLEAR_JOURNAL_ON_COLLECT: ClassVar[bool] = False  # (Zhipu keeps its request-id generation)

    def result_files(self, state, request) -> list[ResultFile]:
        """What to download: each finished video with the vendor's facts as its meta, then whatever
        else the vendor returns (``extra_files``)."""
        files = []
        for index, url in enumerate(state.urls):
            meta = {"url": url, "provider": self.id, **self.output_meta(state, request, index)}
            files.append(ResultFile(url, "video", self.id, index, {k: v for k, v in meta.items() if v not in (None, "")}))
        return files + (self.extra_files(state, request) if files else [])

    def _collect_steps(self, state, request, vendor: str, after=None):
        """Each result file downloaded in order (checked, streamed: ``http.result_steps``), then probed and
        given its thumbnail: on the loop, the last rename and the probe are one trip, not two. ``after``:
        called with the outputs in that same trip; then ``(outputs, after(outputs))`` is returned."""
        from engines.cloud import http

        paths = []
        for f in self.result_files(state, request):
            paths.append((yield from http.result_steps(f.url, request.workdir, f.prefix, f.index, kind=f.kind,
                                                       vendor=vendor)))
        outputs = self._collected(state, request, paths)
        return outputs if after is None else (outputs, after(outputs))

    def collect(self, state, request) -> list:
        return steps.run(self._collect_steps(state, request, "storage"))

    async def acollect(self, state, request, after=None):
        """``collect`` on the cloud loop: downloads awaited there, under the vendor's request slots; the
        files written, probed and thumbnailed on file threads. ``after(outputs)``: run on the file thread
        that made the last output (the studio writes job.json there); the answer is then ``(outputs,
        after(outputs))``."""
        from engines.cloud import aio

        return await steps.arun(self._collect_steps(state, request, self.VENDOR, after), on=aio.files)

    def _collected(self, state, request, paths: list) -> list:
        from engines.cloud import results

        outputs = []
        for f, path in zip(self.result_files(state, request), paths):
            make = results.video_output if f.kind == "video" else results.image_output
            outputs.append(make(path, meta=f.meta))
        if self.CLEAR_JOURNAL_ON_COLLECT:
            self.journal.clear(request.job_id)
            self.journal.sweep(at_most_every=SWEEP_EVERY_S)
        return outputs

    def output_meta(self, state, request, index: int) -> dict:
        """What the vendor said about output ``index`` (model, the prompt it really used...)."""
        return {"model": state.info.get("model")}

    def extra_files(self, state, request) -> list[ResultFile]:
        """Files besides the videos (Seedance's last frame), downloaded after them."""
        return []

    # --- keys -----------------------------------------------------------------------
    def secret(self, name: str) -> str | None:
        return self.secrets.get(name) if self.secrets is not None else os.environ.get(name)

    def key(self) -> str | None:
        return self.secret(self.KEYS[0])

    def missing_keys(self) -> list[str]:
        return [name for name in self.KEYS if not self.secret(name)]

    def require_keys(self) -> tuple[str, ...]:
        values = tuple(self.secret(name) for name in self.KEYS)
        missing = [name for name, value in zip(self.KEYS, values) if not value]
        if missing:
            en, zh = _names(missing)
            raise NotAvailable(f"{self.VENDOR} needs {en}: set {'it' if len(missing) == 1 else 'them'} in "
                               f"Settings → Provider keys or as {_env_words(missing)}.",
                               f"{self.VENDOR} 需要 {zh}：请在“设置 → 服务商密钥”中填写，或设置同名环境变量。")
        return values  # type: ignore[return-value]

    def require_key(self) -> str:
        return self.require_keys()[0]

    def available(self) -> tuple[bool, str]:
        missing = self.missing_keys()
        if not missing:
            return True, ""
        en, zh = _names(missing)
        return False, Reason(f"set {en} in Settings → Provider keys or as {_env_words(missing)}",
                             f"请在“设置 → 服务商密钥”中填写 {zh}，或设置同名环境变量")

    # --- transport ------------------------------------------------------------------
    def base_url(self) -> str:
        return (os.environ.get(self.BASE_ENV) or self.DEFAULT_BASE).rstrip("/")

    def auth_headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.require_key()}"}
        if self.CONTENT_TYPE:
            headers["Content-Type"] = self.CONTENT_TYPE
        return {**headers, **(extra or {})}


def _names(names: list[str]) -> tuple[str, str]:
    return " and ".join(names), " 和 ".join(names)


def _env_words(names: list[str]) -> str:
    return "an environment variable" if len(names) == 1 else "environment variables"
