"""Wan2.1 text-to-video (1.3B) on diffusers' ``WanPipeline``."""

from __future__ import annotations

import json

from pydantic import Field, field_validator

from core import media
from core.errors import Cancelled
from engines.base import Output, output_name

from .diffusers_engine import DiffusersEngine
from .limits import Budget
from .memory import LowVramParams


class WanT2VParams(LowVramParams):
    width: int = Field(832, ge=16, le=1920, multiple_of=16, description="Frame width in pixels (multiple of 16)")
    height: int = Field(480, ge=16, le=1920, multiple_of=16, description="Frame height in pixels (multiple of 16)")
    num_frames: int = Field(81, ge=1, le=257, description="Frames to generate; Wan needs 4k+1 (81 = 5 s at 16 fps)")
    num_inference_steps: int = Field(50, ge=1, le=200, description="Denoising steps")
    guidance_scale: float = Field(5.0, ge=0.0, le=30.0, description="Classifier-free guidance scale")
    fps: int = Field(16, ge=1, le=60, description="Frames per second of the MP4")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed; empty for a random one")

    @field_validator("num_frames")
    @classmethod
    def _four_k_plus_one(cls, v: int) -> int:
        if (v - 1) % 4:
            raise ValueError(f"Wan needs num_frames = 4k+1 (e.g. {v - (v - 1) % 4} or {v - (v - 1) % 4 + 4})")
        return v


class WanT2VEngine(DiffusersEngine):
    id = "wan2.1-t2v-1.3b"
    title = "Wan2.1 T2V 1.3B (local)"
    tasks = ("t2v",)
    needs = ("weights",)
    hub_id = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    transformer_based = True
    Params = WanT2VParams
    budget = Budget(1280, 768, 81)  # Wan2.1's 720P class (1280×720, seed 000's 1280×768), 5 s at 16 fps

    def load(self, path, device, dtype):
        import torch
        from diffusers import AutoencoderKLWan, WanPipeline

        vae = AutoencoderKLWan.from_pretrained(path, subfolder="vae", dtype=torch.float32)
        pipe = WanPipeline.from_pretrained(path, vae=vae, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device)

    def run(self, request, progress, cancelled):
        p: WanT2VParams = request.params
        if cancelled():
            raise Cancelled()
        progress(0, p.num_inference_steps)

        def call(pipe, device):
            return pipe(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt or None,
                width=p.width,
                height=p.height,
                num_frames=p.num_frames,
                num_inference_steps=p.num_inference_steps,
                guidance_scale=p.guidance_scale,
                generator=self.generator(p.seed, device),
                output_type="np",
                callback_on_step_end=self.step_callback(p.num_inference_steps, progress, cancelled,
                                                  request.workdir, "bcfhw"),
            )

        result = self.generate(p, call)
        frames = result.frames[0]
        meta = {"comment": json.dumps({"engine": self.id, "prompt": request.prompt, **p.model_dump()},
                                      ensure_ascii=False)}
        video = media.write_video(frames, request.workdir / output_name(self.id, 0, "mp4"), p.fps, meta)
        thumb = media.write_thumbnail(media.first_frame(video), request.workdir / "thumb.jpg")
        return [Output(video, "video", width=p.width, height=p.height, frames=len(frames),
                       fps=p.fps, thumbnail=thumb, meta={"memory": self.last_plan.as_info()})]
