"""SDXL text-to-image on diffusers' ``StableDiffusionXLPipeline``, with scheduler choice and
LoRA files from ``<workspace>/models/loras/``. The helpers here (schedulers, LoRA checks, PNG
writing) are shared with the InstantID engine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core import media
from core.errors import Cancelled, NotAvailable, ValidationError
from engines.base import Output, output_name

from .diffusers_engine import DiffusersEngine
from .limits import Budget
from .memory import LowVramParams
from .weights import missing_packages

Scheduler = Literal["default", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "unipc"]
SCHEDULER_LABELS = {"default": "model default", "euler": "Euler", "euler_a": "Euler a", "dpmpp_2m": "DPM++ 2M",
                    "dpmpp_2m_karras": "DPM++ 2M Karras", "ddim": "DDIM", "unipc": "UniPC"}
LORA_NAME = re.compile(r"^[\w.\- ]{1,100}$")


class LoraSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=100, description="File name in models/loras, without .safetensors")
    weight: float = Field(1.0, ge=-4.0, le=4.0, description="Strength of this LoRA")


class SdxlParams(LowVramParams):
    width: int = Field(1024, ge=64, le=2048, multiple_of=8, description="Image width in pixels (multiple of 8)")
    height: int = Field(1024, ge=64, le=2048, multiple_of=8, description="Image height in pixels (multiple of 8)")
    num_inference_steps: int = Field(30, ge=1, le=150, description="Denoising steps")
    guidance_scale: float = Field(5.0, ge=0.0, le=30.0, description="Classifier-free guidance scale")
    scheduler: Scheduler = Field("default", description="Sampler: the model's own, or one of the diffusers schedulers")
    num_images: int = Field(1, ge=1, le=8, description="Images in the batch (image i uses seed + i)")
    loras: list[LoraSpec] = Field(default_factory=list, max_length=8,
                                  description="LoRA files from models/loras with their weights")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed; empty for a random one")


def make_scheduler(name: str, base):
    """A fresh scheduler of kind ``name`` built from the model's own scheduler ``base``."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        UniPCMultistepScheduler,
    )

    config = base.config
    if name == "default":
        return type(base).from_config(config)
    if name in ("dpmpp_2m", "dpmpp_2m_karras"):
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2,
                                                       use_karras_sigmas=name.endswith("karras"))
    cls = {"euler": EulerDiscreteScheduler, "euler_a": EulerAncestralDiscreteScheduler, "ddim": DDIMScheduler,
           "unipc": UniPCMultistepScheduler}[name]
    return cls.from_config(config)


# --- LoRA ----------------------------------------------------------------------------------
def lora_dir(settings) -> Path:
    return settings.models_dir / "loras"


def available_loras(settings) -> list[str]:
    folder = lora_dir(settings)
    return sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []


def lora_choices(settings) -> tuple[list[str], Path]:
    """The LoRA pick list of a form: the files of ``models/loras`` and that folder."""
    return available_loras(settings), lora_dir(settings)


def check_loras(settings, loras: list[LoraSpec]) -> None:
    have = available_loras(settings)
    for spec in loras:
        if not LORA_NAME.match(spec.name) or spec.name not in have:
            listing = ", ".join(have) if have else "none"
            raise ValidationError(
                f"LoRA '{spec.name}' not found: put {spec.name}.safetensors in {lora_dir(settings)} "
                f"(available: {listing}).",
                f"找不到 LoRA“{spec.name}”：请把 {spec.name}.safetensors 放入 {lora_dir(settings)}（现有：{listing}）。")
    names = [s.name for s in loras]
    if len(set(names)) != len(names):
        raise ValidationError("Each LoRA may be listed once.", "每个 LoRA 只能列出一次。")


def apply_loras(pipe, settings, loras: list[LoraSpec]) -> None:
    """Activate exactly ``loras`` on a (cached) pipeline, loading files not loaded yet."""
    loaded: dict[str, float] = pipe.__dict__.setdefault("_studio_loras", {})
    if not loras:
        if loaded:
            pipe.disable_lora()
        return
    if missing_packages("peft"):
        raise NotAvailable("LoRA files need the 'peft' package: pip install peft.",
                           "使用 LoRA 需要安装 peft：pip install peft。")
    adapters = []
    for spec in loras:
        path = lora_dir(settings) / f"{spec.name}.safetensors"
        adapter = "lora_" + re.sub(r"\W", "_", spec.name)
        mtime = path.stat().st_mtime
        if loaded.get(adapter) not in (None, mtime):
            pipe.delete_adapters(adapter)
            loaded.pop(adapter)
        if adapter not in loaded:
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter)
            loaded[adapter] = mtime
        adapters.append(adapter)
    pipe.enable_lora()
    pipe.set_adapters(adapters, adapter_weights=[s.weight for s in loras])


# --- outputs -------------------------------------------------------------------------------
def save_images(engine_id: str, request, images, params, extra: dict | None = None) -> list[Output]:
    """PNG files with the parameters in text chunks, plus a thumbnail each."""
    p = params
    outputs = []
    for i, image in enumerate(images):
        seed = p.seed + i
        record = {"engine": engine_id, "prompt": request.prompt, "negative_prompt": request.negative_prompt,
                  **p.model_dump(mode="json"), **(extra or {}), "seed": seed, "index": i}
        loras = ", ".join(f"{s.name}:{s.weight:g}" for s in getattr(p, "loras", []))
        a1111 = (f"{request.prompt}\nNegative prompt: {request.negative_prompt}\n"
                 f"Steps: {p.num_inference_steps}, Sampler: {SCHEDULER_LABELS[p.scheduler]}, "
                 f"CFG scale: {p.guidance_scale:g}, Seed: {seed}, Size: {image.width}x{image.height}, "
                 f"Model: {engine_id}" + (f", Lora: {loras}" if loras else ""))
        path = media.write_png(image, request.workdir / output_name(engine_id, i, "png"),
                               {"parameters": a1111, "xianying": json.dumps(record, ensure_ascii=False)})
        thumb = media.write_thumbnail(image, request.workdir / f"thumb_{i}.jpg")
        outputs.append(Output(path, "image", width=image.width, height=image.height, thumbnail=thumb,
                              meta={"seed": seed, **{k: v for k, v in (extra or {}).items() if k == "memory"}}))
    return outputs


def load_sdxl(path, device, dtype):
    """The SDXL base pipeline; the InstantID engine runs on this same object when it stays on
    the GPU (cache key ``sdxl``), so the two engines hold one copy of SDXL between them."""
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(path, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    pipe._studio_scheduler = pipe.scheduler
    return pipe.to(device)


class SdxlEngine(DiffusersEngine):
    id = "sdxl"
    title = "SDXL (local)"
    tasks = ("t2i",)
    needs = ("weights",)
    hub_id = "stabilityai/stable-diffusion-xl-base-1.0"
    Params = SdxlParams
    budget = Budget(2048, 2048, 2, "images")  # = 8 images at 1024×1024

    def extra_models(self) -> list[tuple[str, Path, bool]]:
        return [(f"LoRA {name}", lora_dir(self.settings) / f"{name}.safetensors", True)
                for name in available_loras(self.settings)]

    def field_choices(self, name: str):
        return lora_choices(self.settings) if name == "loras" else None

    def check(self, request) -> None:
        super().check(request)
        check_loras(self.settings, request.params.loras)

    def load(self, path, device, dtype):
        return load_sdxl(path, device, dtype)

    def run(self, request, progress, cancelled):
        p: SdxlParams = request.params
        if cancelled():
            raise Cancelled()
        check_loras(self.settings, p.loras)
        progress(0, p.num_inference_steps)

        def call(pipe, device):
            pipe.scheduler = make_scheduler(p.scheduler, pipe._studio_scheduler)
            apply_loras(pipe, self.settings, p.loras)
            return pipe(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt or None,
                width=p.width,
                height=p.height,
                num_inference_steps=p.num_inference_steps,
                guidance_scale=p.guidance_scale,
                num_images_per_prompt=p.num_images,
                generator=[self.generator(p.seed + i, device) for i in range(p.num_images)],
                callback_on_step_end=self.step_callback(p.num_inference_steps, progress, cancelled,
                                                  request.workdir),
            ).images

        images = self.generate(p, call)
        return save_images(self.id, request, images, p, {"memory": self.last_plan.as_info()})
