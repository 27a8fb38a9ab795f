"""One settings model: ``<workspace>/config.yaml`` (seed 000's system level) + environment.

Precedence: defaults < config.yaml < environment (``XIANYING_*`` and the vendors' own
variables) < command-line flags. Provider secrets are not settings: see ``app.secrets``.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from .errors import ConfigError, pydantic_message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuPool(_Strict):
    enabled: bool = True
    max_concurrent: int = Field(1, ge=1, le=16)
    gpu_ids: list[int] = Field(default_factory=list)


class ModelCache(_Strict):
    enabled: bool = True
    max_size_gb: float = Field(100.0, ge=0)


class Storage(_Strict):
    type: str = "local"
    base_path: str | None = None  # seed 000 key; outputs live under the workspace regardless
    retention_hours: float = Field(1.0, ge=0, description="scratch API outputs older than this are swept; 0 = never")


class QueueSettings(_Strict):
    io_workers: int = Field(4, ge=1, le=64)
    max_attempts: int = Field(2, ge=1, le=10, description="runs of a local job before an interruption fails it")
    poll_max_interval_s: float = Field(30.0, ge=0.1)


class Settings(_Strict):
    workspace: Path
    host: str = "127.0.0.1"
    port: int = 7860
    language: str = "zh-CN"
    gpu_pool: GpuPool = Field(default_factory=GpuPool)
    model_cache: ModelCache = Field(default_factory=ModelCache)
    storage: Storage = Field(default_factory=Storage)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    models: dict[str, str] = Field(default_factory=dict, description="engine id -> folder with its weights")
    secrets_file: Path | None = None

    # --- derived paths -------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.workspace / "studio.db"

    @property
    def queue_dir(self) -> Path:
        return self.workspace / "queue"

    @property
    def outputs_dir(self) -> Path:
        return self.workspace / "outputs"

    @property
    def staging_dir(self) -> Path:
        return self.workspace / "tmp"

    @property
    def uploads_dir(self) -> Path:
        return self.workspace / "uploads"

    @property
    def models_dir(self) -> Path:
        return self.workspace / "models"

    @property
    def projects_dir(self) -> Path:
        return self.workspace / "projects"

    def ensure_dirs(self) -> None:
        for d in (self.workspace, self.queue_dir, self.outputs_dir, self.staging_dir,
                  self.uploads_dir, self.models_dir, self.projects_dir):
            d.mkdir(parents=True, exist_ok=True)


def default_workspace() -> Path:
    env = os.environ.get("XIANYING_HOME")
    return Path(env) if env else Path("workspace")


def load_settings(workspace: Path | str | None = None, **overrides) -> Settings:
    """Read ``config.yaml`` in the workspace, apply env and explicit overrides."""
    ws = Path(workspace) if workspace else default_workspace()
    ws = ws.expanduser().resolve()
    data: dict = {}
    cfg = ws / "config.yaml"
    if cfg.exists():
        try:
            loaded = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{cfg}: not valid YAML ({exc}). Fix the file or delete it to use defaults.",
                              f"{cfg}：YAML 格式错误（{exc}）。请修正或删除该文件以使用默认值。") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{cfg}: expected a mapping of settings.", f"{cfg}：应为键值映射。")
        data.update(loaded)
    if os.environ.get("XIANYING_GPU_MAX_CONCURRENT"):
        data.setdefault("gpu_pool", {})["max_concurrent"] = int(os.environ["XIANYING_GPU_MAX_CONCURRENT"])
    if os.environ.get("XIANYING_SECRETS"):
        data["secrets_file"] = os.environ["XIANYING_SECRETS"]
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["workspace"] = ws
    try:
        return Settings.model_validate(data)
    except PydanticError as exc:
        en, zh = pydantic_message(exc)
        raise ConfigError(f"{cfg}: {en}", f"{cfg}：{zh}") from exc
