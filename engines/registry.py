"""The static engine registry. Adding an engine = one file + one line here.

Imports are explicit so PyInstaller sees every engine; engine modules import nothing heavy
at module level, so building the registry is instant.
"""

from __future__ import annotations

from engines.base import Engine
from engines.cloud.ark import ArkEngine
from engines.cloud.dashscope import DashScopeEngine
from engines.cloud.tencent_vod import TencentVodEngine
from engines.cloud.zhipu import ZhipuEngine
from engines.local.sdxl import SdxlEngine
from engines.local.sdxl_instantid import SdxlInstantIdEngine
from engines.local.svd import SvdEngine
from engines.local.wan_i2v import WanI2V720Engine, WanI2VEngine
from engines.local.wan_t2v import WanT2VEngine

ENGINE_CLASSES: tuple[type[Engine], ...] = (
    WanT2VEngine,
    WanI2VEngine,
    WanI2V720Engine,
    SdxlEngine,
    SdxlInstantIdEngine,
    SvdEngine,
    TencentVodEngine,
    ArkEngine,
    DashScopeEngine,
    ZhipuEngine,
)


def build_engines(settings, secrets=None, cache=None) -> dict[str, Engine]:
    """One instance per engine class, sharing the pipeline cache among local engines."""
    engines: dict[str, Engine] = {}
    for cls in ENGINE_CLASSES:
        if cls.kind == "local":
            engines[cls.id] = cls(settings, secrets, cache=cache)
        else:
            engines[cls.id] = cls(settings, secrets)
    return engines
