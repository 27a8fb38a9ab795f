"""Wan2.1 image-to-video (14B, 480P and 720P) on diffusers' ``WanImageToVideoPipeline``.

One engine id per variant (``wan2.1-i2v-480p``, ``wan2.1-i2v-720p``): they are separate
checkpoints, each with its own weights folder, default size and availability, so the engine
list shows exactly the variants whose weights are on disk.
"""

from __future__ import annotations

from pydantic import Field

from core.errors import Cancelled

from .diffusers_engine import DiffusersEngine
from .limits import Budget
from .svd import fit_image, need_image, write_clip
from .wan_t2v import WanT2VParams


class WanI2VParams(WanT2VParams):
    """Wan's video parameters (``wan_t2v``); the 14B I2V checkpoints default to 40 steps."""

    num_inference_steps: int = Field(40, ge=1, le=200, description="Denoising steps")


class WanI2V720Params(WanI2VParams):
    width: int = Field(1280, ge=16, le=1920, multiple_of=16, description="Frame width in pixels (multiple of 16)")
    height: int = Field(720, ge=16, le=1920, multiple_of=16, description="Frame height in pixels (multiple of 16)")


class WanI2VEngine(DiffusersEngine):
    id = "wan2.1-i2v-480p"
    title = "Wan2.1 I2V 14B 480P (local)"
    tasks = ("i2v",)
    needs = ("weights",)
    hub_id = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
    packages = ("torch", "diffusers", "transformers", "ftfy")
    transformer_based = True
    Params = WanI2VParams
    budget = Budget(1280, 768, 81)  # Wan2.1's 720P class (1280×720, seed 000's 1280×768), 5 s at 16 fps

    def check(self, request) -> None:
        super().check(request)
        need_image(request, self.id)

    def load(self, path, device, dtype):
        import torch
        from diffusers import AutoencoderKLWan, WanImageToVideoPipeline
        from transformers import CLIPVisionModel

        # the VAE and the CLIP image encoder stay in float32, as the model card loads them
        vae = AutoencoderKLWan.from_pretrained(path, subfolder="vae", dtype=torch.float32)
        image_encoder = CLIPVisionModel.from_pretrained(path, subfolder="image_encoder", dtype=torch.float32)
        pipe = WanImageToVideoPipeline.from_pretrained(path, vae=vae, image_encoder=image_encoder, dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device)

    def run(self, request, progress, cancelled):
        p: WanI2VParams = request.params
        image = fit_image(need_image(request, self.id).open(), p.width, p.height)
        if cancelled():
            raise Cancelled()
        progress(0, p.num_inference_steps)

        def call(pipe, device):
            return pipe(
                image=image,
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
            ).frames[0]

        frames = self.generate(p, call)
        return write_clip(self.id, request, frames, p.fps, p, {"memory": self.last_plan.as_info()})


class WanI2V720Engine(WanI2VEngine):
    id = "wan2.1-i2v-720p"
    title = "Wan2.1 I2V 14B 720P (local)"
    hub_id = "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers"
    Params = WanI2V720Params
