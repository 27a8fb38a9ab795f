"""The InstantID denoising loop on SDXL components.

Per step: IdentityNet (a ControlNet) sees the latents, the keypoint image and the face tokens
(not the text) and returns residuals; the UNet sees the latents, ``[text | face tokens]`` through
its face attention processors, and those residuals. Classifier-free guidance pairs the prompt
with the negative prompt and the face with a zero embedding.
"""

from __future__ import annotations

import torch
from diffusers import StableDiffusionXLPipeline
from diffusers.image_processor import VaeImageProcessor


class InstantIdPipeline(StableDiffusionXLPipeline):
    model_cpu_offload_seq = "text_encoder->text_encoder_2->image_proj->unet->vae"

    def __init__(self, vae, text_encoder, text_encoder_2, tokenizer, tokenizer_2, unet, scheduler, controlnet,
                 image_proj, image_encoder=None, feature_extractor=None, force_zeros_for_empty_prompt: bool = True,
                 add_watermarker: bool | None = False):
        super().__init__(vae, text_encoder, text_encoder_2, tokenizer, tokenizer_2, unet, scheduler,
                         image_encoder, feature_extractor, force_zeros_for_empty_prompt, add_watermarker=False)
        self.register_modules(controlnet=controlnet, image_proj=image_proj)
        self.control_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor, do_convert_rgb=True,
                                                   do_normalize=False)

    def set_face_scale(self, scale: float) -> None:
        for proc in self.unet.attn_processors.values():
            if hasattr(proc, "to_k_ip"):
                proc.scale = scale

    def face_tokens(self, embedding, batch: int, device):
        proj = self.image_proj
        param = next(proj.parameters())
        face = torch.as_tensor(embedding, dtype=torch.float32).reshape(1, 1, -1).to(param.device, param.dtype)
        tokens = proj(face).to(device)
        negative = proj(torch.zeros_like(face)).to(device)
        return tokens.repeat(batch, 1, 1), negative.repeat(batch, 1, 1)

    @torch.no_grad()
    def __call__(self, prompt: str, face_embedding, keypoints_image, negative_prompt: str | None = None,
                 width: int = 1024, height: int = 1024, num_inference_steps: int = 30, guidance_scale: float = 5.0,
                 ip_adapter_scale: float = 0.8, controlnet_conditioning_scale: float = 0.8,
                 num_images_per_prompt: int = 1, generator=None, callback_on_step_end=None):
        device = self._execution_device
        batch = num_images_per_prompt
        cfg = guidance_scale > 1.0
        text, neg_text, pooled, neg_pooled = self.encode_prompt(
            prompt=prompt, device=device, num_images_per_prompt=batch, do_classifier_free_guidance=cfg,
            negative_prompt=negative_prompt)
        face, neg_face = self.face_tokens(face_embedding, batch, device)
        face, neg_face = face.to(text.dtype), neg_face.to(text.dtype)
        self.set_face_scale(ip_adapter_scale)
        control = self.control_processor.preprocess(keypoints_image, height=height, width=width)
        control = control.to(device, self.controlnet.dtype).repeat(batch, 1, 1, 1)
        time_ids = self._get_add_time_ids((height, width), (0, 0), (height, width), dtype=text.dtype,
                                          text_encoder_projection_dim=self.text_encoder_2.config.projection_dim)
        time_ids = time_ids.to(device).repeat(batch, 1)
        unet_text = torch.cat([text, face], dim=1)
        if cfg:
            unet_text = torch.cat([torch.cat([neg_text, neg_face], dim=1), unet_text])
            face = torch.cat([neg_face, face])
            pooled = torch.cat([neg_pooled, pooled])
            time_ids, control = torch.cat([time_ids, time_ids]), torch.cat([control, control])
        added = {"text_embeds": pooled, "time_ids": time_ids}

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = self.prepare_latents(batch, self.unet.config.in_channels, height, width, text.dtype, device,
                                       generator)
        for i, t in enumerate(self.scheduler.timesteps):
            model_in = torch.cat([latents] * 2) if cfg else latents
            model_in = self.scheduler.scale_model_input(model_in, t)
            down, mid = self.controlnet(model_in, t, encoder_hidden_states=face, controlnet_cond=control,
                                        conditioning_scale=controlnet_conditioning_scale, added_cond_kwargs=added,
                                        return_dict=False)
            noise = self.unet(model_in, t, encoder_hidden_states=unet_text, added_cond_kwargs=added,
                              down_block_additional_residuals=down, mid_block_additional_residual=mid,
                              return_dict=False)[0]
            if cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(noise, t, latents, return_dict=False)[0]
            if callback_on_step_end is not None:
                callback_on_step_end(self, i, t, {})
        return self.decode(latents)

    def decode(self, latents):
        if self.vae.dtype == torch.float16 and self.vae.config.force_upcast:
            self.upcast_vae()
        latents = latents.to(next(iter(self.vae.post_quant_conv.parameters())).dtype)
        image = self.vae.decode(latents / self.vae.config.scaling_factor, return_dict=False)[0]
        return self.image_processor.postprocess(image, output_type="pil")
