"""DashScope's error answers, mapped once: ``{"request_id", "code", "message"}`` → ``ProviderError``."""

from __future__ import annotations

from core.errors import ProviderError
from engines.cloud import http

VENDOR = "DashScope"
KEY = "DASHSCOPE_API_KEY"

__all__ = ["KEY", "VENDOR", "error_of", "moderation_error"]


def moderation_error(code: str | None, message: str | None) -> ProviderError:
    return ProviderError(
        f"{VENDOR}'s content check refused this prompt or image ({code}). Change the prompt or the image and "
        "try again." + (f" ({message})" if message else ""),
        f"{VENDOR} 内容安全审核未通过（{code}）。请修改提示词或图片后重试。",
        retryable=False, vendor_code=code or "DataInspectionFailed")


def error_of(response, key: str | None = None) -> ProviderError:
    """DashScope's error body ``{"request_id", "code", "message"}`` → ProviderError."""
    body = http.error_body(response)
    code = str(body.get("code") or "") or None
    message = http.scrub(body.get("message"), key) or None
    status = response.status_code
    if code and code.startswith("DataInspection"):
        return moderation_error(code, message)
    hint_en = hint_zh = ""
    retryable = None
    if status == 401 or code == "InvalidApiKey":
        hint_en = f"Check {KEY} in Settings → Provider keys (or the environment variable of that name)."
        hint_zh = f"请在“设置 → 服务商密钥”或环境变量中检查 {KEY}。"
        retryable = False
    elif code == "Arrearage":
        hint_en, hint_zh, retryable = "The account is overdue; top it up in the DashScope console.", \
            "账户已欠费，请在百炼控制台充值。", False
    elif status == 403:
        hint_en, hint_zh = "This key may not have access to the model; enable it in the console.", \
            "该密钥可能无权使用此模型，请在控制台开通。"
    elif code and code.startswith("Throttling"):
        retryable = True
    return http.http_error(VENDOR, status, code, message, retryable=retryable, hint_en=hint_en, hint_zh=hint_zh,
                           retry_after=http.retry_after_of(response))


def _remember_request_id(response, refs: dict[int, str], generation: int, key: str | None) -> ProviderError:
    """Map an error answer, keeping DashScope's request_id so a person can quote it to support."""
    rid = http.error_body(response).get("request_id")
    if rid:
        refs[generation] = str(rid)
    return error_of(response, key)
