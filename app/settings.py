"""One settings model: ``<workspace>/config.yaml`` (seed 000's system level) + environment.

Precedence: defaults < config.yaml < environment (``XIANYING_*`` and the vendors' own
variables) < command-line flags. Provider secrets are not settings: see ``app.secrets``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from core.errors import ConfigError, pydantic_message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuPool(_Strict):
    enabled: bool = True
    max_concurrent: int = Field(1, ge=1, le=16)
    gpu_ids: list[int] = Field(default_factory=list)
    isolation: Literal["process", "thread"] = Field(
        "process", description="process: local jobs run in a worker process the studio can end at once "
                               "(Cancel, stop); thread: inside the studio (a step already running cannot be "
                               "interrupted)")
    kill_after_s: float = Field(2.0, ge=0, le=600, description="process isolation: a cancelled or stopped local "
                                                               "job still running after this long has its worker "
                                                               "process ended (its warm models are lost)")


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
    async_cloud: bool = Field(True, description="a cloud job's create, polls and downloads run as one chain on one "
                                                "event loop (app/cloud_chain.py): a vendor slow to answer holds no "
                                                "io worker")
    cloud_process: bool = Field(True, description="those chains run in a process of their own (app/cloud_host.py), "
                                                  "so hundreds of cloud jobs leave the UI's core alone")
    cloud_processes: int = Field(1, ge=1, le=16, description="how many such processes share the cloud jobs (more "
                                                           "for hundreds of jobs at once on a machine with cores "
                                                           "to spare)")


class TeamSettings(_Strict):
    """Team mode (``database_url`` set): workers on other machines; see docs/team.md."""

    lease_s: float = Field(30.0, ge=1, description="a running job's lease: a worker silent this long loses the job")
    heartbeat_s: float = Field(5.0, ge=0.1, description="how often a worker renews its leases and advertises itself")
    monitor_interval_s: float = Field(2.0, ge=0.1, description="how often the studio looks for lost jobs")
    warm_wait_s: float = Field(3.0, ge=0, description="a worker without the pipeline loaded leaves a new job this "
                                                      "long to an idle worker that has it warm")
    min_free_vram_gb: float = Field(0.0, ge=0, description="a CUDA worker with less free VRAM declines local jobs")
    shared_outputs: bool = Field(False, description="workers' workspace is the studio's (a shared mount): they "
                                                    "write outputs/ directly instead of uploading")
    studio_lanes: list[str] = Field(default_factory=lambda: ["io"], description="lanes the studio itself serves "
                                                                                "in team mode (gpu, io)")
    studio_url: str | None = Field(None, description="workers upload results here (http://studio:7860)")


class LlmSettings(_Strict):
    """An OpenAI-compatible chat server of the user's own for script drafting (engine ``llm-script``)."""

    base_url: str | None = Field(None, pattern=r"^https?://", description="e.g. http://127.0.0.1:11434/v1 (Ollama), "
                                 "http://127.0.0.1:1234/v1 (LM Studio), http://host:8000/v1 (vLLM)")
    model: str = Field("", max_length=200, description="The model id the server serves, e.g. qwen2.5:14b")
    api_key_env: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]{0,63}$",
                                    description="Name of the variable (or provider key) holding its key; empty: none")
    structured: str = Field("json_schema", pattern=r"^(json_schema|json_object|none)$",
                            description="Structured output the server supports: json_schema, json_object or none")
    name: str = Field("LLM", max_length=60, description="Shown in messages")


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
    hf_endpoint: str | None = Field(None, description="Hugging Face hub (or a mirror such as https://hf-mirror.com) "
                                                      "for model downloads; empty = $HF_ENDPOINT or huggingface.co")
    secrets_file: Path | None = None
    queue_url: str | None = Field(None, description="team mode: redis://host:6379/0 or postgresql://... for the "
                                                    "queue lanes; empty = SQLite files in the workspace")
    database_url: str | None = Field(None, description="team mode: postgresql://user:password@host/db for the job "
                                                       "tables; empty = SQLite in the workspace")
    team: TeamSettings = Field(default_factory=TeamSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    allow_unknown_models: bool = Field(False, description="cloud engines: send a model id missing from the model "
                                                          "table (engines/cloud/models/*.yaml) with only basic checks")

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
    """``$XIANYING_HOME``, else ``./workspace``; the frozen desktop app uses the user's data
    folder instead (never the bundle's own folder or the current directory)."""
    env = os.environ.get("XIANYING_HOME")
    if env:
        return Path(env)
    if getattr(sys, "frozen", False):
        from platformdirs import user_data_dir

        return Path(user_data_dir("xianying", appauthor=False))
    return Path("workspace")


def default_config_text() -> str:
    """A ``config.yaml`` listing every setting at its default, commented out (first start)."""
    lines = ["# Xianying Studio (仙影) settings. Uncomment a line and change it; delete this file to",
             "# get the defaults back. XIANYING_* environment variables and flags override it.",
             "# (host and port come from the --host/--port flags.)", ""]
    for name, field in Settings.model_fields.items():
        if name in ("workspace", "host", "port"):
            continue
        value = field.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        text = yaml.safe_dump({name: value}, allow_unicode=True, sort_keys=False, default_flow_style=False)
        lines += [f"# {line}" for line in text.splitlines()]
    return "\n".join(lines) + "\n"


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
    if os.environ.get("XIANYING_GPU_ISOLATION"):
        data.setdefault("gpu_pool", {})["isolation"] = os.environ["XIANYING_GPU_ISOLATION"]
    if os.environ.get("XIANYING_CLOUD_PROCESS"):
        data.setdefault("queue", {})["cloud_process"] = os.environ["XIANYING_CLOUD_PROCESS"]
    if os.environ.get("XIANYING_CLOUD_PROCESSES"):
        data.setdefault("queue", {})["cloud_processes"] = os.environ["XIANYING_CLOUD_PROCESSES"]
    if os.environ.get("XIANYING_SECRETS"):
        data["secrets_file"] = os.environ["XIANYING_SECRETS"]
    for key in ("queue_url", "database_url"):  # team mode (app.backends)
        if os.environ.get(f"XIANYING_{key.upper()}"):
            data[key] = os.environ[f"XIANYING_{key.upper()}"]
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["workspace"] = ws
    try:
        return Settings.model_validate(data)
    except PydanticError as exc:
        en, zh = pydantic_message(exc)
        raise ConfigError(f"{cfg}: {en}", f"{cfg}：{zh}") from exc
