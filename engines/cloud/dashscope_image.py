"""Alibaba DashScope Wan text-to-image: portraits and stills from the cloud, for creators without a GPU
(character Design, a scene's still).

Create ``POST {base}/services/aigc/text2image/image-synthesis`` with ``X-DashScope-Async: enable``:
``{"model", "input": {"prompt", "negative_prompt"?}, "parameters": {"size": "W*H", "n": 1-4, "seed"?,
"prompt_extend", "watermark"}}``; query ``GET {base}/tasks/{id}``: a finished task's ``output.results``
lists ``{url, orig_prompt, actual_prompt}`` (URLs kept 24 h) and ``usage.image_count``. The models, their
size rules and prompt lengths are data (``engines/cloud/models/dashscope-image.yaml``). Everything else
— keys, the create journal, a lost create looked up in the task list instead of sent again, polling,
cancel — is the Wan video adapter's, whose task protocol this is.
"""

from __future__ import annotations

import re

from pydantic import Field

from core.errors import ProviderError, ValidationError
from engines.base import EngineRequest, Params, RemoteState
from engines.cloud import modeltable
from engines.cloud.dashscope import DashScopeEngine, task_state
from engines.cloud.dashscope_errors import VENDOR
from engines.cloud.keyed import ResultFile
from engines.cloud.modeltable import ModelSpec

PATH = "services/aigc/text2image/image-synthesis"
SIDE = (512, 1440)  # wan2.2 and earlier: each side
AREA = (768 * 768, 1440 * 1440)  # shape "area" (wan2.5): total pixels, ratio 1:4 to 4:1


class DashScopeImageParams(Params):
    model: str = Field("wan2.2-t2i-flash", pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{1,63}$",
                       description="Wan text-to-image model (engines/cloud/models/dashscope-image.yaml)",
                       json_schema_extra={"choices": modeltable.model_choices("dashscope-image")})
    width: int = Field(1024, ge=256, le=2880, multiple_of=8, description="Image width in pixels")
    height: int = Field(1024, ge=256, le=2880, multiple_of=8, description="Image height in pixels")
    num_images: int = Field(1, ge=1, le=4, description="Images made by one task (1-4)")
    seed: int | None = Field(None, ge=0, le=2147483647, description="Seed; empty for a random one")
    prompt_extend: bool = Field(True, description="Let DashScope rewrite the prompt for better results")
    watermark: bool = Field(False, description="Add the 'AI generated' watermark")


class DashScopeImageEngine(DashScopeEngine):
    id = "dashscope-image"
    title = "DashScope Wan text-to-image (Alibaba Model Studio)"
    tasks = ("t2i",)
    Params = DashScopeImageParams

    def check(self, request: EngineRequest) -> None:
        p: DashScopeImageParams = request.params
        if request.images:
            raise ValidationError(f"{p.model} makes images from text only; remove the input image.",
                                  f"{p.model} 只根据文字生成图片，请去掉输入图片。")
        if not request.prompt.strip():
            raise ValidationError("Write a prompt first.", "请先填写提示词。")
        spec = self.model_spec(p.model)
        if spec is None:
            return
        longest = spec.max_prompt or 500
        if len(request.prompt) > longest:
            raise ValidationError(f"The prompt is {len(request.prompt)} characters; {p.model} accepts at most "
                                  f"{longest}.", f"提示词 {len(request.prompt)} 字，{p.model} 最多 {longest} 字。")
        if len(request.negative_prompt) > 500:
            raise ValidationError(f"The negative prompt is {len(request.negative_prompt)} characters; at most 500.",
                                  f"反向提示词 {len(request.negative_prompt)} 字，最多 500 字。")
        if spec.max_images and p.num_images > spec.max_images:
            raise ValidationError(f"{p.model} makes at most {spec.max_images} images per task.",
                                  f"{p.model} 每个任务最多生成 {spec.max_images} 张图片。")
        check_size(p.model, spec, p.width, p.height)

    def create_body(self, request: EngineRequest) -> tuple[str, dict]:
        p: DashScopeImageParams = request.params
        inputs = {"prompt": request.prompt}
        if request.negative_prompt:
            inputs["negative_prompt"] = request.negative_prompt
        params: dict = {"size": f"{p.width}*{p.height}", "n": p.num_images, "prompt_extend": p.prompt_extend,
                        "watermark": p.watermark}
        if p.seed is not None:
            params["seed"] = p.seed
        return f"{self.base_url()}/{PATH}", {"model": p.model, "input": inputs, "parameters": params}

    def _state(self, answer: dict, key: str | None) -> RemoteState:
        return image_state(answer, key)

    def result_files(self, state: RemoteState, request: EngineRequest) -> list[ResultFile]:
        prompts = state.info.get("actual_prompts") or []
        return [ResultFile(url, "image", self.id, i,
                           {k: v for k, v in {"url": url, "provider": self.id, "model": request.params.model,
                                              "actual_prompt": prompts[i] if i < len(prompts) else None}.items()
                            if v not in (None, "")})
                for i, url in enumerate(state.urls)]


def check_size(model: str, spec: ModelSpec, width: int, height: int) -> None:
    if spec.shape == "area":
        lo, hi = AREA
        ok = lo <= width * height <= hi and 0.25 <= width / height <= 4
        rule_en = f"between {_px(lo)} and {_px(hi)} pixels in all, sides at most 4:1"
        rule_zh = f"总像素在 {_px(lo)} 到 {_px(hi)} 之间，宽高比不超过 4:1"
    else:
        lo, hi = SIDE
        ok = lo <= width <= hi and lo <= height <= hi
        rule_en, rule_zh = f"each side {lo} to {hi} pixels", f"宽和高均在 {lo} 到 {hi} 像素之间"
    if not ok:
        raise ValidationError(f"{model} does not make {width}×{height}: {rule_en}.",
                              f"{model} 不支持 {width}×{height}：{rule_zh}。")


def _px(area: int) -> str:
    side = int(area ** 0.5)
    return f"{side}×{side}"


def image_state(answer: dict, key: str | None = None) -> RemoteState:
    """The video adapter's task state, read for images: ``output.results[].url`` (failed rows skipped)."""
    out = answer.get("output") or {}
    results = [r for r in (out.get("results") or []) if isinstance(r, dict)]
    if out.get("task_status") == "SUCCEEDED":
        answer = {**answer, "output": {**out, "video_url": None}}
    state = task_state(answer, key)
    if str(out.get("task_status")) != "SUCCEEDED":
        return state
    urls = [str(r["url"]) for r in results if isinstance(r.get("url"), str) and re.match(r"^https?://", r["url"])]
    state.info["actual_prompts"] = [r.get("actual_prompt") for r in results if r.get("url")]
    if isinstance(answer.get("usage"), dict):
        state.info["usage"] = answer["usage"]
    if urls:
        state.status, state.error, state.urls = "succeeded", None, urls
    else:
        state.status, state.urls = "failed", []
        codes = ", ".join(sorted({str(r.get("code")) for r in results if r.get("code")})) or "no_result"
        state.error = ProviderError(f"{VENDOR} finished the task but made no image ({codes}).",
                                    f"{VENDOR} 任务已完成但没有生成图片（{codes}）。", vendor_code=codes)
    return state
