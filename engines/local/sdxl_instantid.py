"""Character-consistent stills: SDXL + InstantID, driven by a reference face image.

Weights: the SDXL base (the ``sdxl`` engine's folder, or a full SDXL pipeline in this engine's
own folder) and, in ``<workspace>/models/sdxl-instantid/``, the published InstantID files as they
come: ``ControlNetModel/`` (IdentityNet) and ``ip-adapter.bin`` (or ``.safetensors``). Faces are
read by insightface's antelopev2 models in ``<workspace>/models/insightface/models/antelopev2/``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from app import media
from app.errors import Cancelled, NotAvailable, ValidationError

from .diffusers_engine import DiffusersEngine
from .instantid.face import (ANTELOPE_FILES, FaceAnalyzer, InsightFaceAnalyzer, draw_keypoints, fit_keypoints,
                            insightface_root)
from .memory import LowVramParams
from .sdxl import Scheduler, make_scheduler, save_images
from .weights import WeightsInfo, find_weights, missing_packages

ADAPTER_FILES = ("ip-adapter.bin", "ip-adapter.safetensors")


class InstantIdParams(LowVramParams):
    width: int = Field(1024, ge=64, le=2048, multiple_of=8, description="Image width in pixels (multiple of 8)")
    height: int = Field(1024, ge=64, le=2048, multiple_of=8, description="Image height in pixels (multiple of 8)")
    num_inference_steps: int = Field(30, ge=1, le=150, description="Denoising steps")
    guidance_scale: float = Field(5.0, ge=0.0, le=30.0, description="Classifier-free guidance scale")
    identity_strength: float = Field(0.8, ge=0.0, le=1.5,
                                     description="IdentityNet (face keypoints ControlNet) conditioning scale")
    ip_adapter_scale: float = Field(0.8, ge=0.0, le=1.5, description="Weight of the face-embedding tokens")
    scheduler: Scheduler = Field("default", description="Sampler: the model's own, or one of the diffusers schedulers")
    num_images: int = Field(1, ge=1, le=8, description="Images in the batch (image i uses seed + i)")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed; empty for a random one")


class SdxlInstantIdEngine(DiffusersEngine):
    id = "sdxl-instantid"
    title = "SDXL + InstantID (local, face from a reference)"
    tasks = ("t2i", "ref2v")
    needs = ("weights",)
    hub_id = "stabilityai/stable-diffusion-xl-base-1.0"
    Params = InstantIdParams

    def __init__(self, settings, secrets=None, cache=None, face_analyzer: FaceAnalyzer | None = None):
        super().__init__(settings, secrets, cache=cache)
        self.face_analyzer = face_analyzer  # None: insightface, built when first needed

    # --- where things are ----------------------------------------------------------------
    def instantid_dir(self) -> Path:
        configured = self.settings.models.get(self.id)
        return Path(configured).expanduser() if configured else self.settings.models_dir / self.id

    def adapter_file(self) -> Path | None:
        return next((self.instantid_dir() / f for f in ADAPTER_FILES if (self.instantid_dir() / f).exists()), None)

    def weights(self) -> WeightsInfo:
        own = self.instantid_dir()
        if (own / "model_index.json").exists():
            return WeightsInfo(own, "settings" if self.settings.models.get(self.id) else "workspace", own)
        return find_weights(self.settings, "sdxl", self.hub_id)

    def extra_models(self) -> list[tuple[str, Path, bool]]:
        folder = self.instantid_dir()
        adapter = self.adapter_file() or folder / ADAPTER_FILES[0]
        faces = insightface_root(self.settings) / "models" / "antelopev2"
        return [("IdentityNet ControlNetModel", folder / "ControlNetModel", (folder / "ControlNetModel").is_dir()),
                ("InstantID ip-adapter", adapter, adapter.exists()),
                ("insightface antelopev2", faces, all((faces / f).exists() for f in ANTELOPE_FILES))]

    def analyzer(self) -> FaceAnalyzer:
        if self.face_analyzer is None:
            self.face_analyzer = InsightFaceAnalyzer(insightface_root(self.settings))
        return self.face_analyzer

    def available(self) -> tuple[bool, str]:
        missing = missing_packages(*self.packages)
        if missing:
            return False, f"Local engines need {', '.join(missing)}: pip install -e '.[local]'."
        base = self.weights()
        folder = self.instantid_dir()
        if base.path is None:
            return False, (f"SDXL base weights not found: put {self.hub_id} (diffusers format) in "
                           f"{self.settings.models_dir / 'sdxl'}.")
        if not (folder / "ControlNetModel" / "config.json").exists() or self.adapter_file() is None:
            return False, (f"InstantID weights not found: put the InstantX/InstantID files (ControlNetModel/ "
                           f"and ip-adapter.bin) in {folder}.")
        face_ok = getattr(self.analyzer(), "available", lambda: (True, ""))()
        if not face_ok[0]:
            return False, face_ok[1]
        return True, f"base: {base.path}; InstantID: {folder}"

    def check(self, request) -> None:
        if self.reference(request) is None:
            raise ValidationError("sdxl-instantid needs a reference face image (reference_images or image).",
                                  "sdxl-instantid 需要一张参考人脸图片（reference_images 或 image）。")

    @staticmethod
    def reference(request):
        image = request.image("reference") or request.image("first_frame")
        return image if image is not None and image.path is not None else None

    # --- loading and running --------------------------------------------------------------
    def load(self, path, device, dtype):
        from diffusers import ControlNetModel, StableDiffusionXLPipeline

        from .instantid.pipeline import InstantIdPipeline
        from .instantid.projection import FaceResampler, install_face_adapter, read_face_adapter

        adapter = self.adapter_file()
        if adapter is None:
            raise NotAvailable(f"ip-adapter.bin is missing from {self.instantid_dir()}.",
                               f"{self.instantid_dir()} 中缺少 ip-adapter.bin。")
        base = StableDiffusionXLPipeline.from_pretrained(path, dtype=dtype)
        controlnet = ControlNetModel.from_pretrained(self.instantid_dir() / "ControlNetModel", dtype=dtype)
        proj_state, ip_state = read_face_adapter(adapter)
        image_proj = FaceResampler.from_state_dict(proj_state).to(dtype).eval()
        install_face_adapter(base.unet, ip_state, num_tokens=image_proj.latents.shape[1])
        pipe = InstantIdPipeline(**base.components, controlnet=controlnet, image_proj=image_proj)
        pipe.set_progress_bar_config(disable=True)
        pipe._studio_scheduler = pipe.scheduler
        return pipe.to(device)

    def run(self, request, progress, cancelled):
        p: InstantIdParams = request.params
        self.check(request)
        if cancelled():
            raise Cancelled()
        reference = self.reference(request).open()
        face = self.analyzer().detect(reference)
        keypoints = fit_keypoints(face.keypoints, reference.size, p.width, p.height)
        kps_image = draw_keypoints(p.width, p.height, keypoints)
        progress(0, p.num_inference_steps)

        def call(pipe, device):
            pipe.scheduler = make_scheduler(p.scheduler, pipe._studio_scheduler)
            return pipe(
                prompt=request.prompt,
                negative_prompt=request.negative_prompt or None,
                face_embedding=face.embedding,
                keypoints_image=kps_image,
                width=p.width,
                height=p.height,
                num_inference_steps=p.num_inference_steps,
                guidance_scale=p.guidance_scale,
                ip_adapter_scale=p.ip_adapter_scale,
                controlnet_conditioning_scale=p.identity_strength,
                num_images_per_prompt=p.num_images,
                generator=[self.generator(p.seed + i, device) for i in range(p.num_images)],
                callback_on_step_end=self.step_callback(p.num_inference_steps, progress, cancelled),
            )

        images = self.generate(p, call)
        outputs = save_images(self.id, request, images, p,
                              {"face_bbox": list(face.bbox), "memory": self.last_plan.as_info()})
        kps_path = media.write_png(kps_image, request.workdir / "face_keypoints.png")
        for out in outputs:
            out.meta["keypoints_image"] = kps_path.name
        return outputs
