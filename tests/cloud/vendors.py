"""One harness over the four cloud fakes, for tests that run the same scenario against every vendor.

``VENDORS``                 engine id -> ``Vendor``.
``Vendor.serve(mp4, mp)``   a started fake, with the environment (key, base URL) set through ``mp``
                            (a ``pytest.MonkeyPatch``); stop it with ``fake.stop()``.
``Vendor.engine(settings)`` the real adapter.
``Vendor.request(settings, job_id, prompt)``   an ``EngineRequest`` for a plain text-to-video job.
``Vendor.tasks(fake)``      {task id: prompt} of every task the fake holds (what the vendor bills).
``Vendor.create_route``     the fake's route name of a create.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.cloud.fakeserver import FakeServer


@dataclass(frozen=True)
class Vendor:
    id: str
    create_route: str
    list_route: str | None
    make: Callable[[bytes], FakeServer]
    env: Callable[[Any], dict]
    params: dict
    prompt_of: Callable[[dict], str]
    engine_path: str

    def serve(self, mp4: bytes, mp) -> Any:
        fake = self.make(mp4).start()
        for name, value in self.env(fake).items():
            mp.setenv(name, value)
        return fake

    def engine(self, settings):
        import importlib

        module, name = self.engine_path.split(":")
        return getattr(importlib.import_module(module), name)(settings)

    def request(self, engine, job_id: str, prompt: str):
        from engines.base import EngineRequest

        return EngineRequest(job_id=job_id, prompt=prompt, negative_prompt="", params=engine.Params(**self.params),
                             workdir=engine.settings.staging_dir / job_id)

    def tasks(self, fake) -> dict[str, str]:
        snapshot = dict(fake.tasks)  # one C-level copy: safe while the fake's threads add tasks
        return {tid: self.prompt_of(task) for tid, task in snapshot.items()}


def _dashscope(mp4: bytes):
    from tests.cloud.fake_dashscope import FakeDashScope

    return FakeDashScope(DS_KEY, mp4)


def _zhipu(mp4: bytes):
    from tests.cloud.fake_zhipu import FakeZhipu

    return FakeZhipu(ZP_KEY, mp4)


def _ark(mp4: bytes):
    from tests.cloud.fake_ark import FakeArk

    return FakeArk()


def _tencent(mp4: bytes):
    from tests.cloud.fake_tencent import FakeTencent

    return FakeTencent()


def _ark_env(fake) -> dict:
    from tests.cloud.fake_ark import API_KEY

    return {"ARK_BASE_URL": fake.base, "ARK_API_KEY": API_KEY}


def _tencent_env(fake) -> dict:
    from tests.cloud.fake_tencent import SECRET_ID, SECRET_KEY, SUB_APP_ID

    return {"TENCENTCLOUD_VOD_ENDPOINT": fake.endpoint, "TENCENTCLOUD_SECRET_ID": SECRET_ID,
            "TENCENTCLOUD_SECRET_KEY": SECRET_KEY, "TENCENTCLOUD_VOD_SUBAPPID": str(SUB_APP_ID)}


DS_KEY = "sk-harness0123456789abcdef"
ZP_KEY = "harness0123456789abcdef.ZhiPuHarnessKey"

VENDORS: dict[str, Vendor] = {
    "dashscope": Vendor("dashscope", "create", "list", _dashscope,
                        lambda f: {"DASHSCOPE_API_KEY": DS_KEY, "DASHSCOPE_HTTP_BASE_URL": f.base_url},
                        {"model": "wanx2.1-t2v-turbo"}, lambda t: t["body"]["input"].get("prompt", ""),
                        "engines.cloud.dashscope:DashScopeEngine"),
    "zhipu": Vendor("zhipu", "create", None, _zhipu,
                    lambda f: {"ZHIPUAI_API_KEY": ZP_KEY, "ZHIPUAI_BASE_URL": f.base_url},
                    {"model": "cogvideox-3"}, lambda t: t["body"].get("prompt", ""),
                    "engines.cloud.zhipu:ZhipuEngine"),
    "ark": Vendor("ark", "create", "list", _ark, _ark_env, {"model": "doubao-seedance-1-0-pro-250528"},
                  lambda t: t["text"], "engines.cloud.ark:ArkEngine"),
    "tencent-vod": Vendor("tencent-vod", "CreateAigcVideoTask", "DescribeTasks", _tencent, _tencent_env,
                          {"model": "Hailuo"}, lambda t: t["body"].get("Prompt", ""),
                          "engines.cloud.tencent_vod:TencentVodEngine"),
}
