"""The static engine registry. Adding an engine = one file + one line here.

Imports are explicit so PyInstaller sees every engine; engine modules import nothing heavy
at module level, so building the registry is instant.
"""

from __future__ import annotations

from engines.base import Engine
from engines.cloud.ark import ArkEngine
from engines.cloud.dashscope import DashScopeEngine
from engines.cloud.dashscope_image import DashScopeImageEngine
from engines.cloud.dashscope_tts import DashScopeTtsEngine
from engines.cloud.tencent_tts import TencentTtsEngine
from engines.cloud.tencent_vod import TencentVodEngine
from engines.cloud.zhipu import ZhipuEngine
from engines.local.local_tts import LocalTtsEngine
from engines.local.sdxl import SdxlEngine
from engines.local.sdxl_instantid import SdxlInstantIdEngine
from engines.local.svd import SvdEngine
from engines.local.wan_i2v import WanI2V720Engine, WanI2VEngine
from engines.local.wan_t2v import WanT2VEngine
from engines.script.vendors import (
    ArkScriptEngine,
    DashScopeScriptEngine,
    OpenAICompatibleScriptEngine,
    ZhipuScriptEngine,
)

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
    DashScopeImageEngine,
    ZhipuEngine,
    LocalTtsEngine,
    DashScopeTtsEngine,
    TencentTtsEngine,
    DashScopeScriptEngine,
    ZhipuScriptEngine,
    ArkScriptEngine,
    OpenAICompatibleScriptEngine,
)


def build_engines(settings, secrets=None, cache=None, devices=None) -> dict[str, Engine]:
    """One instance per engine class; local engines share one pipeline cache and one GPU pool
    (a worker thread keeps its card whichever engine it runs)."""
    from engines.local.devices import DevicePool
    from engines.local.weights import PipelineCache

    cache = cache or PipelineCache(int(settings.model_cache.max_size_gb * 2**30))
    devices = devices or DevicePool.from_settings(settings)
    engines: dict[str, Engine] = {}
    for cls in ENGINE_CLASSES:
        if cls.kind == "local":
            engines[cls.id] = cls(settings, secrets, cache=cache, devices=devices)
        else:
            engines[cls.id] = cls(settings, secrets)
    return engines
