"""The REST surface's own settings: ``<workspace>/rest.yaml`` (optional; every key has a default).

    auth: auto            # auto: keys needed off-loopback, and for REST once any key exists
                          # required: keys needed for everything, even on 127.0.0.1
    engines:              # which engine serves each seed route
      seed000_image: sdxl
      seed000_character: sdxl-instantid
      seed000_video: wan2.1-t2v-1.3b
      seed001: wan2.1-t2v-1.3b
      seed002: {aliyun: dashscope, dashscope: dashscope, zhipuai: zhipu, zhipu: zhipu}
      seed003: ark
      seed004: tencent-vod
    seed003_model: null   # Ark model or endpoint id (ep-...) for seed 003; null = the engine's default
    rate_limit: {per_minute: 120, burst: 60}   # per API key; per_minute 0 turns it off
    max_body_mb: 16       # larger REST request bodies get 413
    public_metrics: true  # /metrics without a key (Prometheus scrapers)
    sync_timeout_s: 300   # seed 002 "is_async": false waits this long for the result
    retention_interval_minutes: 10
    sweep_ui_outputs: false   # also sweep outputs of jobs made in the UI (not only API ones)

Kept apart from ``config.yaml`` (the lead's ``Settings``) so the REST layer owns its knobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from core.errors import ConfigError, pydantic_message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EngineMap(_Strict):
    seed000_image: str = "sdxl"
    seed000_character: str = "sdxl-instantid"
    seed000_video: str = "wan2.1-t2v-1.3b"
    seed001: str = "wan2.1-t2v-1.3b"
    seed002: dict[str, str] = Field(default_factory=lambda: {
        "aliyun": "dashscope", "dashscope": "dashscope", "zhipuai": "zhipu", "zhipu": "zhipu"})
    seed003: str = "ark"
    seed004: str = "tencent-vod"


class RateLimit(_Strict):
    per_minute: float = Field(120.0, ge=0, description="requests per minute per API key; 0 = no limit")
    burst: int = Field(60, ge=1, description="requests allowed at once before the rate applies")


class RestConfig(_Strict):
    auth: Literal["auto", "required"] = "auto"
    engines: EngineMap = Field(default_factory=EngineMap)
    seed003_model: str | None = Field(None, max_length=64)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    max_body_mb: float = Field(16.0, gt=0, le=1024)
    public_metrics: bool = True
    sync_timeout_s: float = Field(300.0, ge=0, le=3600)
    retention_interval_minutes: float = Field(10.0, gt=0, le=1440)
    sweep_ui_outputs: bool = False

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)


def load_rest_config(workspace: Path) -> RestConfig:
    path = Path(workspace) / "rest.yaml"
    if not path.exists():
        return RestConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}). Fix it or delete it to use the defaults.",
                          f"{path}：YAML 格式错误（{exc}）。请修正或删除以使用默认值。") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings.", f"{path}：应为键值映射。")
    try:
        return RestConfig.model_validate(data)
    except PydanticError as exc:
        en, zh = pydantic_message(exc)
        raise ConfigError(f"{path}: {en}", f"{path}：{zh}") from exc
