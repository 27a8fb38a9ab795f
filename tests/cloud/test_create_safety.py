"""A create whose answer was lost is never sent again blindly (issue 20).

Every vendor, the real adapter, a loopback fake that, like the real API, bills every create it
makes (Tencent alone refuses a repeated SessionId). The invariant everywhere: the vendor never
holds more tasks than jobs, and a job either adopts its one task or fails saying it may exist.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ProviderError
from app.settings import load_settings
from engines.cloud import http, safecreate
from tests.cloud.fakeserver import Chaos, Fault
from tests.cloud.vendors import VENDORS

IDS = list(VENDORS)
JOB = "c" * 32


# --- the one table -------------------------------------------------------------------------
def _transport(exc: httpx.HTTPError) -> ProviderError:
    try:
        raise http.transport_error("V", exc, idempotent=False) from exc
    except ProviderError as err:
        return err


REQ = httpx.Request("POST", "http://127.0.0.1/x")
CASES = [
    (_transport(httpx.ConnectError("refused", request=REQ)), "connect", "not_created"),
    (_transport(httpx.ConnectTimeout("slow dns", request=REQ)), "connect", "not_created"),
    (http.http_error("V", 429), "http_429", "not_created"),
    (http.http_error("V", 400, "InvalidParameter"), "http_4xx", "not_created"),
    (http.http_error("V", 401), "http_4xx", "not_created"),
    (ProviderError("busy", vendor_code="RequestLimitExceeded", retryable=True), "refused", "not_created"),
    (_transport(httpx.ReadTimeout("late", request=REQ)), "timeout", "maybe_created"),
    (_transport(httpx.RemoteProtocolError("peer closed connection without sending complete message body")),
     "dropped", "maybe_created"),
    (_transport(httpx.ReadError("reset")), "dropped", "maybe_created"),
    (ProviderError("html", vendor_code="bad_json", http_status=200), "bad_body", "maybe_created"),
    (http.http_error("V", 502), "http_5xx", "maybe_created"),
    (http.http_error("V", 500, "500"), "http_5xx", "maybe_created"),
    (ProviderError("oops", vendor_code="InternalError"), "internal", "maybe_created"),
    (http.http_error("V", 400, "1231"), "duplicate", "maybe_created"),
]


@pytest.mark.parametrize("exc, kind, outcome", CASES, ids=[c[1] + "-" + str(i) for i, c in enumerate(CASES)])
@pytest.mark.parametrize("engine_id", IDS)
def test_every_create_failure_is_classified(engine_id, exc, kind, outcome):
    assert safecreate.classify(engine_id, exc) == (kind, outcome)


def test_every_vendor_has_a_recovery_and_zhipu_cannot_be_asked():
    from engines.cloud.keyed import KeyedCloudEngine
    from engines.registry import ENGINE_CLASSES

    creating = {c.id for c in ENGINE_CLASSES  # the adapters that create billable tasks through safecreate
                if issubclass(c, KeyedCloudEngine) and c.create_plan is not KeyedCloudEngine.create_plan}
    assert set(VENDORS) <= creating and set(safecreate.RECOVERY) == creating  # every adapter that creates tasks
    assert safecreate.RECOVERY == {"tencent-vod": "dedupe", "dashscope": "lookup", "dashscope-image": "lookup",
                                   "ark": "lookup", "zhipu": "none"}


# --- per vendor: the task was made, then its answer was lost ----------------------------------
LOST = {"cut": lambda: Fault(truncate=True), "timeout": lambda: Fault(late=0.8),
        "502": lambda: Fault(status_after=502)}


@pytest.fixture
def served(workspace, mp4_bytes, monkeypatch):
    started = []

    def serve(vendor_id: str):
        vendor = VENDORS[vendor_id]
        fake = vendor.serve(mp4_bytes, monkeypatch)
        started.append(fake)
        return vendor, fake, vendor.engine(load_settings(workspace))

    yield serve
    for fake in started:
        fake.stop()


@pytest.fixture(params=["sync", "async"])
def start(request):
    """``start(engine, request) -> task id or ProviderError``: ``engine.start`` on this thread (an io
    worker's path), or ``engine.astart`` on the cloud loop (the chain's path, app/cloud_chain.py)."""
    from engines.cloud import aio

    def run(engine, req):
        try:
            if request.param == "sync":
                return engine.start(req)
            return aio.submit(engine.astart(req)).result(60)
        except ProviderError as exc:
            return exc

    return run


@pytest.mark.parametrize("lost", LOST)
@pytest.mark.parametrize("vendor_id", IDS)
def test_lost_answer_adopts_the_task_or_fails_saying_it_may_exist(served, start, monkeypatch, vendor_id, lost):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.3")
    vendor, fake, engine = served(vendor_id)
    req = vendor.request(engine, JOB, "丢失的回答")
    fake.inject(vendor.create_route, LOST[lost]())
    outcome = start(engine, req)
    tasks = vendor.tasks(fake)
    assert len(tasks) == 1  # the lost one; never a second
    if vendor_id == "zhipu":  # cannot be asked: fail, show the request id, send nothing more
        assert isinstance(outcome, ProviderError) and outcome.vendor_code == "uncertain_create"
        assert f"xianying-{JOB}-1" in outcome.en and f"xianying-{JOB}-1" in outcome.zh
        assert "Nothing was sent twice" in outcome.en and "未重复提交" in outcome.zh and not outcome.retryable
        assert fake.count("create") == 1
    else:
        assert outcome == next(iter(tasks)), outcome
        if vendor.list_route and vendor_id != "tencent-vod":  # looked up, not sent again
            assert fake.count(vendor.list_route) >= 1 and fake.count(vendor.create_route) == 1
    kinds = {"cut": "dropped", "timeout": "timeout", "502": "http_5xx"}
    logged = [a for a in engine.journal.load(JOB)["attempts"] if a["outcome"] == "maybe_created"]
    assert logged and logged[0]["kind"] == kinds[lost]


@pytest.mark.parametrize("vendor_id", IDS)
def test_crash_between_send_and_answer_looks_up_never_resends(served, start, vendor_id):
    vendor, fake, engine = served(vendor_id)
    req = vendor.request(engine, JOB, "重启之后")
    first = start(engine, req)
    # the process died after sending, before the answer was noted
    engine.journal.save(JOB, state="sending", remote_id=None, task_id=None, sent_at=time.time())
    again = start(engine, req)
    assert list(vendor.tasks(fake)) == [first]
    if vendor_id == "zhipu":
        assert isinstance(again, ProviderError) and again.vendor_code == "uncertain_create"
        assert fake.count("create") == 1
    else:
        assert again == first
    assert [a["outcome"] for a in engine.journal.load(JOB)["attempts"]][:3] == ["sending", "created", "resume"]


@pytest.mark.parametrize("vendor_id", IDS)
def test_throttled_and_refused_creates_are_resent_or_failed_plainly(served, vendor_id):
    vendor, fake, engine = served(vendor_id)
    throttled = fake.chaos_reply("429")
    fake.inject(vendor.create_route, Fault(status=throttled.status, body=throttled.body, times=2))
    task = engine.start(vendor.request(engine, JOB, "限流"))
    assert list(vendor.tasks(fake)) == [task] and fake.count(vendor.create_route) == 3


# --- property: random fault sequences, many jobs ----------------------------------------------
FAULT_NAMES = ("none", "429", "400", "502", "502_after", "late", "cut", "drop")


def make_fault(name: str, fake) -> Fault | None:
    if name == "429":
        reply = fake.chaos_reply("429")
        return Fault(status=reply.status, body=reply.body)
    return {"none": None, "400": Fault(status=400, body={"error": {"code": "InvalidParameter", "message": "bad"}}),
            "502": Fault(status=502, body="bad gateway"), "502_after": Fault(status_after=502),
            "late": Fault(late=0.35), "cut": Fault(truncate=True), "drop": Fault(drop=True)}[name]


JOBS = st.lists(st.tuples(st.lists(st.sampled_from(FAULT_NAMES), max_size=3),
                          st.sampled_from((None, "429", "502"))), min_size=1, max_size=4)


def check_job(vendor, tasks: dict, prompt: str, outcome) -> None:
    mine = [tid for tid, p in tasks.items() if p == prompt]
    assert len(mine) <= 1, f"{vendor.id} holds {len(mine)} tasks for one job"
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, ProviderError), repr(outcome)
        if mine:  # the task exists: the job must say it may
            assert outcome.vendor_code == "uncertain_create", (outcome.vendor_code, outcome.en)
    else:
        assert mine == [outcome], (mine, outcome)


@pytest.mark.parametrize("vendor_id", IDS)
def test_property_random_faults_never_bill_more_tasks_than_jobs(served, monkeypatch, vendor_id):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.15")
    monkeypatch.setenv("XIANYING_LOOKUP_SLACK_S", "1")
    vendor, fake, engine = served(vendor_id)

    @settings(max_examples=15, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(jobs=JOBS)
    def run(jobs):
        before = set(vendor.tasks(fake))
        outcomes = []
        for create_faults, list_fault in jobs:
            job_id, prompt = uuid.uuid4().hex, f"job {uuid.uuid4().hex[:8]}"
            fake.faults.clear()
            faults = [f for f in (make_fault(n, fake) for n in create_faults) if f is not None]
            fake.inject(vendor.create_route, *faults)
            if list_fault and vendor.list_route:
                fake.inject(vendor.list_route, make_fault(list_fault, fake))
            try:
                outcome = engine.start(vendor.request(engine, job_id, prompt))
            except Exception as exc:  # noqa: BLE001 - any failure is judged by check_job
                outcome = exc
            outcomes.append((prompt, outcome))
        if any("late" in faults for faults, _ in jobs):
            time.sleep(0.4)  # let late answers finish before counting
        tasks = {tid: p for tid, p in vendor.tasks(fake).items() if tid not in before}
        assert len(tasks) <= len(jobs)
        for prompt, outcome in outcomes:
            check_job(vendor, tasks, prompt, outcome)

    run()


# --- the issue's fault mix: 20 jobs at once, several seeds ------------------------------------
def run_job(vendor, engine, fake, job_id: str, prompt: str):
    req = vendor.request(engine, job_id, prompt)
    try:
        task = engine.start(req)
    except ProviderError as exc:
        return exc, "create"
    for _ in range(40):
        try:
            state = engine.poll(task, req)
        except ProviderError as exc:
            if exc.retryable:
                continue
            return task, "poll"
        if state.status not in ("queued", "running"):
            break
    else:
        return task, "poll"
    if state.status != "succeeded":
        return task, state.status
    try:
        engine.collect(state, req)
    except ProviderError:
        return task, "download"
    return task, "succeeded"


@pytest.mark.parametrize("vendor_id", IDS)
def test_issue_fault_mix_never_leaves_more_tasks_than_jobs(served, monkeypatch, vendor_id):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.25")
    monkeypatch.setenv("XIANYING_LOOKUP_SLACK_S", "0.05")
    vendor, fake, engine = served(vendor_id)
    for seed in (1, 2, 3):
        before = set(vendor.tasks(fake))
        fake.chaos = Chaos(p429=0.3, p5xx=0.2, slow=0.1, cut=0.05, truncate_download=0.2, slow_s=0.5, seed=seed)
        prompts = [f"mix {seed} {i}" for i in range(20)]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda p: run_job(vendor, engine, fake, uuid.uuid4().hex, p), prompts))
        fake.chaos = None
        time.sleep(0.6)  # slow answers finish their work
        tasks = {tid: p for tid, p in vendor.tasks(fake).items() if tid not in before}
        assert len(tasks) <= len(prompts), f"{vendor.id} seed {seed}: {len(tasks)} tasks for 20 jobs"
        for prompt, (outcome, _) in zip(prompts, results):
            check_job(vendor, tasks, prompt, outcome)
