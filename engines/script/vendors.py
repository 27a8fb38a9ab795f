"""The script engines: one OpenAI-compatible adapter (``base.ScriptEngine``) pointed at each vendor.

``dashscope-script``  Alibaba DashScope compatible mode (Qwen), ``DASHSCOPE_API_KEY``;
                      ``https://dashscope.aliyuncs.com/compatible-mode/v1`` (env ``DASHSCOPE_COMPAT_BASE_URL``;
                      international: ``https://dashscope-intl.aliyuncs.com/compatible-mode/v1``).
                      json_schema for qwen-plus / qwen-flash / qwen3-max, json_object for the others.
``zhipu-script``      Zhipu GLM, ``ZHIPUAI_API_KEY``; ``https://open.bigmodel.cn/api/paas/v4``
                      (env ``ZHIPUAI_BASE_URL``); json_object; ``thinking: disabled`` for GLM-4.5 and later.
``ark-script``        Volcengine Ark (Doubao), ``ARK_API_KEY``; ``https://ark.cn-beijing.volces.com/api/v3``
                      (env ``ARK_BASE_URL``); json_schema (doubao-seed 250615 and later); ``thinking: disabled``.
``llm-script``        any OpenAI-compatible server named in config.yaml (``llm: {base_url, model,
                      api_key_env, structured}``): a local Ollama, LM Studio or vLLM, or OpenAI itself.
"""

from __future__ import annotations

import os

from engines.base import Reason
from engines.cloud.chat import ChatEndpoint
from engines.cloud.keyed import KeyedCloudEngine

from .base import ScriptEngine, ScriptParams


class DashScopeScriptEngine(ScriptEngine, KeyedCloudEngine, vendor="DashScope", keys=("DASHSCOPE_API_KEY",),
                            base_env="DASHSCOPE_COMPAT_BASE_URL",
                            default_base="https://dashscope.aliyuncs.com/compatible-mode/v1"):
    id = "dashscope-script"
    title = "Qwen (DashScope) script drafting"
    DEFAULT_MODEL = "qwen-plus"

    def endpoint(self, p: ScriptParams) -> ChatEndpoint:
        model = p.model or self.DEFAULT_MODEL
        schema_ok = model.startswith(("qwen-plus", "qwen-flash", "qwen3-max"))
        return ChatEndpoint(self.VENDOR, self.base_url(), model, self.require_key(),
                            "json_schema" if schema_ok else "json_object", {"enable_thinking": False})


class ZhipuScriptEngine(ScriptEngine, KeyedCloudEngine, vendor="Zhipu", keys=("ZHIPUAI_API_KEY",),
                        base_env="ZHIPUAI_BASE_URL", default_base="https://open.bigmodel.cn/api/paas/v4"):
    id = "zhipu-script"
    title = "GLM (Zhipu) script drafting"
    DEFAULT_MODEL = "glm-4.5-air"

    def endpoint(self, p: ScriptParams) -> ChatEndpoint:
        model = p.model or self.DEFAULT_MODEL
        extra = {"thinking": {"type": "disabled"}} if model.startswith(("glm-4.5", "glm-4.6", "glm-4.7", "glm-5")) else {}
        return ChatEndpoint(self.VENDOR, self.base_url(), model, self.require_key(), "json_object", extra)


class ArkScriptEngine(ScriptEngine, KeyedCloudEngine, vendor="Volcengine Ark", keys=("ARK_API_KEY",),
                      base_env="ARK_BASE_URL", default_base="https://ark.cn-beijing.volces.com/api/v3"):
    id = "ark-script"
    title = "Doubao (Volcengine Ark) script drafting"
    DEFAULT_MODEL = "doubao-seed-1-6-250615"

    def endpoint(self, p: ScriptParams) -> ChatEndpoint:
        model = p.model or self.DEFAULT_MODEL
        return ChatEndpoint(self.VENDOR, self.base_url(), model, self.require_key(), "json_schema",
                            {"thinking": {"type": "disabled"}})


class OpenAICompatibleScriptEngine(ScriptEngine):
    id = "llm-script"
    title = "Your own LLM (OpenAI-compatible: Ollama, LM Studio, vLLM...) script drafting"

    @property
    def config(self):
        return self.settings.llm

    def _key(self) -> str | None:
        name = self.config.api_key_env
        if not name:
            return None
        return self.secrets.get(name) if self.secrets is not None else os.environ.get(name)

    def needs_text(self) -> Reason | None:
        cfg = self.config
        if not cfg.base_url:
            return Reason("set llm.base_url (and llm.model) in config.yaml, e.g. http://127.0.0.1:11434/v1 for Ollama",
                          "请在 config.yaml 中设置 llm.base_url（以及 llm.model），如 Ollama 的 http://127.0.0.1:11434/v1")
        if not (cfg.model or "").strip():
            return Reason("set llm.model in config.yaml (the model id your server serves)",
                          "请在 config.yaml 中设置 llm.model（服务器上的模型名）")
        if cfg.api_key_env and not self._key():
            return Reason(f"set {cfg.api_key_env} (llm.api_key_env) in Settings → Provider keys or the environment",
                          f"请设置 {cfg.api_key_env}（llm.api_key_env），在“设置 → 服务商密钥”或环境变量中")
        return None

    def available(self) -> tuple[bool, str]:
        reason = self.needs_text()
        return (False, reason) if reason else (True, "")

    def endpoint(self, p: ScriptParams) -> ChatEndpoint:
        from core.errors import NotAvailable

        reason = self.needs_text()
        if reason:
            raise NotAvailable(f"llm-script is not set up: {reason}", f"llm-script 未配置：{reason.zh}")
        cfg = self.config
        return ChatEndpoint(cfg.name or "LLM", cfg.base_url, p.model or cfg.model, self._key(), cfg.structured)
