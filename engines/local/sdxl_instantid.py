"""Character-consistent stills: SDXL + InstantID, driven by a reference face image.

Weights: the SDXL base (the ``sdxl`` engine's folder, or a full SDXL pipeline in this engine's
own folder) and, in ``<workspace>/models/sdxl-instantid/``, the published InstantID files as they
come: ``ControlNetModel/`` (IdentityNet) and ``ip-adapter.bin`` (or ``.safetensors``). Faces are
read by insightface's antelopev2 models in ``<workspace>/models/insightface/models/antelopev2/``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core import media
from core.errors import Cancelled, NotAvailable, ValidationError
from engines.base import Reason

from . import memory
from .diffusers_engine import DiffusersEngine
from .limits import Budget
from .instantid.face import (
    ANTELOPE_FILES,
    FaceAnalyzer,
    InsightFaceAnalyzer,
    draw_keypoints,
    fit_keypoints,
    insightface_root,
)
from .memory import LowVramParams
from .sdxl import (
    LoraSpec,
    Scheduler,
    apply_loras,
    check_loras,
    lora_choices,
    load_sdxl,
    make_scheduler,
    save_images,
)
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
    loras: list[LoraSpec] = Field(default_factory=list, max_length=8,
                                  description="LoRA files from models/loras with their weights (a style on the face)")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed; empty for a random one")


class InstantIdParts:
    """What InstantID adds to an SDXL pipeline, cached on its own: IdentityNet, the face
    resampler and the face attention processors (built for the SDXL UNet's layer layout)."""

    def __init__(self, controlnet, image_proj, face_procs):
        self.controlnet, self.image_proj, self.face_procs = controlnet, image_proj, face_procs

    @property
    def components(self) -> dict:  # the cache sizes entries by their components' parameters
        return {"controlnet": self.controlnet, "image_proj": self.image_proj, "face_procs": self.face_procs}

    def to(self, device):
        for module in self.components.values():
            module.to(device)
        return self


def assemble(base, parts: InstantIdParts):
    """An InstantID pipeline over ``base``'s own modules (no copy). It shares the base's run
    lock, LoRA state and scheduler template, so SDXL and InstantID runs on one card take turns."""
    from .instantid.pipeline import InstantIdPipeline

    pipe = InstantIdPipeline(**base.components, controlnet=parts.controlnet, image_proj=parts.image_proj)
    pipe.set_progress_bar_config(disable=True)
    pipe._studio_scheduler = base._studio_scheduler
    pipe._face_procs = parts.face_procs
    pipe.__dict__["_studio_loras"] = base.__dict__.setdefault("_studio_loras", {})
    if hasattr(base, "_studio_lock"):
        pipe._studio_lock = base._studio_lock
    return pipe


class SdxlInstantIdEngine(DiffusersEngine):
    id = "sdxl-instantid"
    title = "SDXL + InstantID (local, face from a reference)"
    tasks = ("t2i", "ref2v")
    needs = ("weights",)
    hub_id = "stabilityai/stable-diffusion-xl-base-1.0"
    Params = InstantIdParams
    budget = Budget(2048, 2048, 2, "images")  # = 8 images at 1024×1024, as plain SDXL

    def __init__(self, settings, secrets=None, cache=None, devices=None, face_analyzer: FaceAnalyzer | None = None):
        super().__init__(settings, secrets, cache=cache, devices=devices)
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

    def field_choices(self, name: str):
        return lora_choices(self.settings) if name == "loras" else None

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
            return False, Reason(f"Local engines need {', '.join(missing)}: pip install -e '.[local]'.",
                                 f"本地引擎需要 {', '.join(missing)}：pip install -e '.[local]'。")
        base = self.weights()
        folder = self.instantid_dir()
        if base.path is None:
            return False, Reason(f"SDXL base weights not found: put {self.hub_id} (diffusers format) in "
                                 f"{self.settings.models_dir / 'sdxl'}.",
                                 f"找不到 SDXL 基础权重：请把 {self.hub_id}（diffusers 格式）放到 "
                                 f"{self.settings.models_dir / 'sdxl'}。")
        if not (folder / "ControlNetModel" / "config.json").exists() or self.adapter_file() is None:
            return False, Reason(f"InstantID weights not found: put the InstantX/InstantID files (ControlNetModel/ "
                                 f"and ip-adapter.bin) in {folder}.",
                                 f"找不到 InstantID 权重：请把 InstantX/InstantID 的文件（ControlNetModel/ 和 "
                                 f"ip-adapter.bin）放到 {folder}。")
        face_ok = getattr(self.analyzer(), "available", lambda: (True, ""))()
        if not face_ok[0]:
            return False, face_ok[1]
        return True, Reason(f"base: {base.path}; InstantID: {folder}", f"基础模型：{base.path}；InstantID：{folder}")

    def check(self, request) -> None:
        super().check(request)
        if self.reference(request) is None:
            raise ValidationError("sdxl-instantid needs a reference face image (reference_images or image).",
                                  "sdxl-instantid 需要一张参考人脸图片（reference_images 或 image）。")
        check_loras(self.settings, request.params.loras)

    @staticmethod
    def reference(request):
        image = request.image("reference") or request.image("first_frame")
        return image if image is not None and image.path is not None else None

    # --- loading --------------------------------------------------------------------------
    # On the GPU without offload (and on the CPU) the engine borrows the plain SDXL engine's
    # cached pipeline (key "sdxl") and adds only its own parts, cached apart: IdentityNet, the
    # face resampler and the face attention processors, swapped into the shared UNet for the
    # length of a run. Offload hooks belong to one pipeline, so under offload it loads its own.
    def pipeline(self, params=None, offload: str | None = None):
        path, device, dtype = self.placement()
        shared = self.resident_mode("sdxl", path, device, dtype)
        resident = "none" if shared == "none" else self.resident_mode(self.id, path, device, dtype)
        plan = self.memory_plan(params, path, device, dtype, offload, resident=resident)
        self.last_plan = plan
        if plan.offload == "none":
            own = self.cache_key(self.id, path, device, dtype)
            self.cache.discard(lambda k: k[:4] == own)
            base = self.warm("sdxl", path, device, dtype, plan, load_sdxl)
            parts = self.warm(f"{self.id}/parts", self.instantid_dir(), device, dtype, plan,
                              lambda folder, dev, dt: self.load_parts(base.unet, dev, dt))
            pipe = assemble(base, parts)
        else:
            pipe = self.warm(self.id, path, device, dtype, plan, self.load)
        memory.apply_run_modes(pipe, plan)
        return pipe, device

    def needed_bytes(self, path, dtype) -> int:
        return super().needed_bytes(path, dtype) + memory.needed_bytes(self.instantid_dir(), dtype.itemsize)

    def load_parts(self, unet, device, dtype) -> InstantIdParts:
        from diffusers import ControlNetModel

        from .instantid.projection import (
            FaceResampler,
            build_face_processors,
            read_face_adapter,
        )

        adapter = self.adapter_file()
        if adapter is None:
            raise NotAvailable(f"ip-adapter.bin is missing from {self.instantid_dir()}.",
                               f"{self.instantid_dir()} 中缺少 ip-adapter.bin。")
        controlnet = ControlNetModel.from_pretrained(self.instantid_dir() / "ControlNetModel", dtype=dtype)
        proj_state, ip_state = read_face_adapter(adapter)
        image_proj = FaceResampler.from_state_dict(proj_state).to(dtype).eval()
        procs = build_face_processors(unet, ip_state, num_tokens=image_proj.latents.shape[1])
        return InstantIdParts(controlnet, image_proj, procs).to(device)

    def load(self, path, device, dtype):
        """A whole InstantID pipeline of its own (the offload modes)."""
        from .instantid.projection import set_face_processors

        base = load_sdxl(path, device, dtype)
        parts = self.load_parts(base.unet, device, dtype)
        set_face_processors(base.unet, parts.face_procs)
        return assemble(base, parts)

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
            from .instantid.projection import face_processors

            pipe.scheduler = make_scheduler(p.scheduler, pipe._studio_scheduler)
            apply_loras(pipe, self.settings, p.loras)
            with face_processors(pipe.unet, pipe._face_procs):
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
                    callback_on_step_end=self.step_callback(p.num_inference_steps, progress, cancelled,
                                                  request.workdir),
                )

        images = self.generate(p, call)
        outputs = save_images(self.id, request, images, p,
                              {"face_bbox": list(face.bbox), "memory": self.last_plan.as_info()})
        kps_path = media.write_png(kps_image, request.workdir / "face_keypoints.png")
        for out in outputs:
            out.meta["keypoints_image"] = kps_path.name
        return outputs
