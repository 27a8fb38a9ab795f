"""What a failed create means: the one table of failure kinds and their outcomes.

Every create failure is classified once, here, as **not created** (re-sending is safe) or **maybe
created** (re-sending may bill a second task); ``engines/cloud/safecreate.py`` acts on the outcome.

``CREATE_FAILURES``   failure kind -> outcome (per vendor overrides in ``VENDOR_OVERRIDES``). Kinds:
                      ``connect`` (no connection, nothing was sent), ``http_429``, ``http_4xx``,
                      ``refused`` (the vendor answered a refusal in its own body), ``timeout`` (sent,
                      no answer in time), ``dropped`` (the connection broke after sending, e.g. a
                      JSON answer cut in half), ``bad_body`` (2xx that is not the vendor's JSON, or
                      has no task id), ``http_5xx`` (the request was read, the answer is an error),
                      ``internal`` (a vendor-body internal error), ``duplicate`` (the vendor refuses
                      a repeated key: the task exists), ``unknown``.
``RECOVERY``          per engine, what "maybe created" leads to: ``dedupe`` (the vendor refuses a
                      repeated key, so re-sending is safe: Tencent's SessionId), ``lookup`` (list the
                      vendor's tasks and adopt exactly one match: DashScope, Ark), ``none`` (the
                      vendor can't be asked: Zhipu; the job fails, nothing is sent again).
``classify(engine_id, exc) -> (kind, outcome)``    ``retryable(exc) -> bool``
"""

from __future__ import annotations

import httpx

from core.errors import ProviderError

NOT_CREATED, MAYBE_CREATED = "not_created", "maybe_created"

CREATE_FAILURES: dict[str, str] = {
    "connect": NOT_CREATED,      # connection refused / DNS / connect timeout: the body never left
    "http_429": NOT_CREATED,     # throttled before the work
    "http_4xx": NOT_CREATED,     # refused (parameters, key, moderation, arrears)
    "refused": NOT_CREATED,      # a refusal in the vendor's own error body (Tencent: HTTP 200 + Error)
    "timeout": MAYBE_CREATED,    # sent, no answer in time: the vendor may be making it now
    "dropped": MAYBE_CREATED,    # connection broke after sending (answer cut in half, reset)
    "bad_body": MAYBE_CREATED,   # a 2xx answer we cannot read: the task may well exist
    "http_5xx": MAYBE_CREATED,   # the request was read; the error may come after the task was made
    "internal": MAYBE_CREATED,   # a vendor-body internal error (Tencent InternalError)
    "duplicate": MAYBE_CREATED,  # the vendor says it already has this request (Zhipu 1231): it exists
    "unknown": MAYBE_CREATED,
}
VENDOR_OVERRIDES: dict[str, dict[str, str]] = {}  # engine id -> {kind: outcome}, when a vendor promises more
RECOVERY = {"tencent-vod": "dedupe", "dashscope": "lookup", "dashscope-image": "lookup", "ark": "lookup", "zhipu": "none"}
ANSWERED = frozenset({"http_5xx", "bad_body", "internal"})  # the vendor finished with the request
DUPLICATE_CODES = frozenset({"1231", "InvalidParameterValue.SessionId"})
INTERNAL_CODES = ("InternalError", "ResourceUnavailable", "FailedOperation")


def failure_kind(exc: BaseException) -> str:
    cause = exc if isinstance(exc, httpx.HTTPError) else exc.__cause__
    if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)):
        return "connect"
    if isinstance(cause, httpx.TimeoutException):
        return "timeout"
    if isinstance(cause, httpx.HTTPError):
        return "dropped"
    if isinstance(exc, ProviderError):
        status = exc.http_status
        code = str(getattr(exc, "vendor_code", "") or "")
        if code in DUPLICATE_CODES:
            return "duplicate"
        if code in ("bad_json", "no_id", "no_task_id"):
            return "bad_body"
        if status == 429:
            return "http_429"
        if status is not None and 400 <= int(status) < 500:
            return "http_4xx"
        if status is not None and int(status) >= 500:
            return "http_5xx"
        if code.startswith(INTERNAL_CODES):
            return "internal"
        if code:
            return "refused"
    return "unknown"


def classify(engine_id: str, exc: BaseException) -> tuple[str, str]:
    kind = failure_kind(exc)
    outcome = VENDOR_OVERRIDES.get(engine_id, {}).get(kind) or CREATE_FAILURES[kind]
    return kind, outcome


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, ProviderError):
        return bool(getattr(exc, "retryable", False))
    return isinstance(exc, httpx.TransportError)
