"""Every error the studio raises on purpose.

    AppError                      message for a person, in English and Chinese
    ├── ConfigError               settings / YAML that cannot be used
    ├── ValidationError           a request that cannot run (bad params, unknown engine)
    ├── NotFound                  no such job / file / project
    ├── Conflict                  the job is not in a state that allows this
    ├── QuotaExceeded             a user's quota or limit is reached
    ├── Unauthorized              missing / wrong API key
    ├── Forbidden                 an admin-only action asked for by a user
    ├── FileBusy                  another program holds a file open (Windows); the new file is kept
    ├── PathTooLong               a path past Windows' 260-character limit (says how to shorten it)
    └── EngineError               an engine could not produce its output
        ├── NotAvailable          weights, key or GPU missing (says what to do)
        ├── Cancelled             the job was cancelled while it ran
        ├── Interrupted           the app stopped while it ran (the job is re-queued)
        └── ProviderError         a cloud vendor said no; ``retryable`` for 429/5xx/timeouts

Each boundary translates once: the UI turns ``AppError`` into ``gr.Error`` in the
user's language, REST into a status code, the queue retries only ``retryable``.
"""

from __future__ import annotations


class AppError(Exception):
    """An error meant for a person. ``zh`` is the Simplified Chinese text."""

    status = 400
    code = "error"

    def __init__(self, en: str, zh: str | None = None, **fields):
        super().__init__(en)
        self.en = en
        self.zh = zh or en
        self.fields = fields

    def text(self, lang: str = "en") -> str:
        return self.zh if lang.lower().startswith("zh") else self.en

    def __str__(self) -> str:
        return self.en


class ConfigError(AppError):
    code = "config_error"


class ProfileError(ConfigError):
    """A project's YAML (project/characters/scenes) that cannot be used; ``file`` and ``field`` say where."""

    status = 422
    code = "profile_error"


class ValidationError(AppError):
    status = 422
    code = "invalid_request"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class QuotaExceeded(AppError):
    status = 429
    code = "quota_exceeded"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class FileBusy(AppError):
    """A rename that another program kept refusing (Windows sharing violation). ``kept`` is
    where the new file or folder was left, so nothing is lost."""

    status = 409
    code = "file_busy"


class PathTooLong(AppError):
    status = 422
    code = "path_too_long"


class Forbidden(AppError):
    status = 403


class EngineError(AppError):
    status = 500
    code = "engine_error"


class NotAvailable(EngineError):
    status = 503
    code = "engine_unavailable"


class Cancelled(EngineError):
    code = "cancelled"

    def __init__(self, en: str = "Cancelled.", zh: str | None = "已取消。", **fields):
        super().__init__(en, zh, **fields)


class Interrupted(EngineError):
    code = "interrupted"

    def __init__(self, en: str = "Interrupted: the studio stopped while this job ran.",
                 zh: str | None = "已中断：任务运行时工作室被关闭。", **fields):
        super().__init__(en, zh, **fields)


class ProviderError(EngineError):
    """A vendor's refusal. ``vendor_code`` is the vendor's own code, kept for the user."""

    code = "provider_error"

    def __init__(self, en: str, zh: str | None = None, *, retryable: bool = False,
                 vendor_code: str | None = None, http_status: int | None = None, **fields):
        super().__init__(en, zh, **fields)
        self.retryable = retryable
        self.vendor_code = vendor_code
        self.http_status = http_status


def pydantic_message(exc) -> tuple[str, str]:
    """Turn a pydantic ValidationError into one readable line in both languages."""
    parts_en, parts_zh = [], []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "request"
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            parts_en.append(f"{loc}: unknown parameter")
            parts_zh.append(f"{loc}：未知参数")
        elif kind == "missing":
            parts_en.append(f"{loc}: required")
            parts_zh.append(f"{loc}：必填")
        else:
            msg = err.get("msg", "invalid")
            parts_en.append(f"{loc}: {msg}")
            parts_zh.append(f"{loc}：{msg}")
    return "; ".join(parts_en), "；".join(parts_zh)
