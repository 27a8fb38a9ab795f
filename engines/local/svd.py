"""Stable Video Diffusion XT image-to-video on diffusers' ``StableVideoDiffusionPipeline``.

The pipeline has ``callback_on_step_end`` but no interrupt: cancelling raises from the callback
(before the VAE decode), like every other engine.
"""

from __future__ import annotations

import json

from pydantic import Field

from core import media
from core.errors import Cancelled, ValidationError
from engines.base import Output, output_name

from .diffusers_engine import DiffusersEngine
from .limits import Budget
from .memory import LowVramParams


class SvdParams(LowVramParams):
    width: int = Field(1024, ge=64, le=2048, multiple_of=8, description="Frame width in pixels (multiple of 8)")
    height: int = Field(576, ge=64, le=2048, multiple_of=8, description="Frame height in pixels (multiple of 8)")
    num_frames: int = Field(25, ge=2, le=64, description="Frames to generate (SVD-XT was trained on 25)")
    fps: int = Field(7, ge=1, le=60, description="Frames per second: conditions the motion and sets the MP4 rate")
    motion_bucket_id: int = Field(127, ge=1, le=1023, description="More motion when higher")
    noise_aug_strength: float = Field(0.02, ge=0.0, le=1.0,
                                      description="Noise added to the input image; more = less like it, more motion")
    decode_chunk_size: int = Field(8, ge=1, le=64, description="Frames decoded at once (lower = less VRAM)")
    num_inference_steps: int = Field(25, ge=1, le=150, description="Denoising steps")
    min_guidance_scale: float = Field(1.0, ge=0.0, le=20.0, description="Guidance at the first frame")
    max_guidance_scale: float = Field(3.0, ge=0.0, le=20.0, description="Guidance at the last frame")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed; empty for a random one")


def need_image(request, engine_id: str):
    image = request.image("first_frame")
    if image is None or image.path is None:
        raise ValidationError(f"{engine_id} animates an image: give one (upload, URL of a file here, or job:<task_id>).",
                              f"{engine_id} 需要一张输入图片（上传、工作区文件或 job:<任务ID>）。")
    return image


def fit_image(image, width: int, height: int):
    """Centre-crop ``image`` to the aspect of ``width``x``height``, then resize to it."""
    from PIL import Image

    scale = max(width / image.width, height / image.height)
    w, h = round(image.width * scale), round(image.height * scale)
    image = image.resize((w, h), Image.Resampling.LANCZOS)
    left, top = (w - width) // 2, (h - height) // 2
    return image.crop((left, top, left + width, top + height))


def write_clip(engine_id: str, request, frames, fps: int, params, extra: dict | None = None) -> list[Output]:
    """The MP4 (parameters in its comment tag) and a thumbnail of its first frame."""
    record = {"engine": engine_id, "prompt": request.prompt, **params.model_dump(mode="json"), **(extra or {})}
    meta = {"comment": json.dumps(record, ensure_ascii=False)}
    video = media.write_video(frames, request.workdir / output_name(engine_id, 0, "mp4"), fps, meta)
    thumb = media.write_thumbnail(media.first_frame(video), request.workdir / "thumb.jpg")
    height, width = frames[0].shape[:2]
    return [Output(video, "video", width=width, height=height, frames=len(frames), fps=fps, thumbnail=thumb,
                   meta={k: v for k, v in (extra or {}).items() if k == "memory"})]


class SvdEngine(DiffusersEngine):
    id = "svd-xt"
    title = "Stable Video Diffusion XT (local)"
    tasks = ("i2v",)
    needs = ("weights",)
    hub_id = "stabilityai/stable-video-diffusion-img2vid-xt"
    Params = SvdParams
    budget = Budget(1024, 576, 64)  # SVD-XT's size (1024×576), at the most frames Params allow

    def check(self, request) -> None:
        super().check(request)
        need_image(request, self.id)
        p = request.params
        if p.min_guidance_scale > p.max_guidance_scale:
            raise ValidationError("min_guidance_scale must not exceed max_guidance_scale.",
                                  "min_guidance_scale 不能大于 max_guidance_scale。")

    def load(self, path, device, dtype):
        from diffusers import StableVideoDiffusionPipeline

        pipe = StableVideoDiffusionPipeline.from_pretrained(path, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device)

    def run(self, request, progress, cancelled):
        p: SvdParams = request.params
        self.check(request)
        if cancelled():
            raise Cancelled()
        image = fit_image(need_image(request, self.id).open(), p.width, p.height)
        progress(0, p.num_inference_steps)

        def call(pipe, device):
            return pipe(
                image,
                width=p.width,
                height=p.height,
                num_frames=p.num_frames,
                num_inference_steps=p.num_inference_steps,
                min_guidance_scale=p.min_guidance_scale,
                max_guidance_scale=p.max_guidance_scale,
                fps=p.fps,
                motion_bucket_id=p.motion_bucket_id,
                noise_aug_strength=p.noise_aug_strength,
                decode_chunk_size=p.decode_chunk_size,
                generator=self.generator(p.seed, device),
                output_type="np",
                callback_on_step_end=self.step_callback(p.num_inference_steps, progress, cancelled,
                                                  request.workdir, "bfchw"),
            ).frames[0]

        frames = self.generate(p, call)
        return write_clip(self.id, request, frames, p.fps, p, {"memory": self.last_plan.as_info()})
