"""Tiny random-weight pipelines for tests, built in code and saved with ``save_pretrained``
(the way diffusers' own tests build them with ``get_dummy_components``)."""

from __future__ import annotations

from pathlib import Path


def build_tiny_wan_t2v(target: Path) -> Path:
    """Save a tiny WanPipeline (2-layer transformer, 3-channel-base VAE, tiny T5) to ``target``."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    tokenizer = T5Tokenizer()  # transformers 5 builds a small in-memory vocabulary offline
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37,
                                               num_layers=2, num_heads=4, relative_attention_num_buckets=8))
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    target.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(target)
    return target


# --- shared tiny pieces ------------------------------------------------------------------
def tiny_clip_tokenizer():
    """A CLIP BPE tokenizer over single characters (no merges), built offline."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    chars = list(bytes_to_unicode().values())
    for suffix in ("", "</w>"):
        for c in chars:
            vocab.setdefault(c + suffix, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _clip_text_config(vocab_size: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size,
                          projection_dim=32, max_position_embeddings=77)


def _tiny_sdxl_unet():
    from diffusers import UNet2DConditionModel

    # cross_attention_dim = both text encoders' hidden sizes; time ids: 6 * 8 + pooled 32 = 80
    return UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=8)


def _tiny_vae_2d():
    from diffusers import AutoencoderKL

    # four levels, like the real SDXL VAE: latents are 1/8 of the image side
    return AutoencoderKL(block_out_channels=[8, 8, 8, 8], in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=64)


def _tiny_clip_vision(image_size: int, patch_size: int, hidden: int = 32, projection: bool = True):
    from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

    cls = CLIPVisionModelWithProjection if projection else CLIPVisionModel
    return cls(CLIPVisionConfig(
        hidden_size=hidden, projection_dim=hidden, num_hidden_layers=2, num_attention_heads=4,
        image_size=image_size, intermediate_size=37, patch_size=patch_size))


# --- SDXL --------------------------------------------------------------------------------
def build_tiny_sdxl(target: Path) -> Path:
    """Save a tiny StableDiffusionXLPipeline (64x64 images, 8x8 latents) to ``target``."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer()
    config = _clip_text_config(len(tokenizer))
    pipe = StableDiffusionXLPipeline(
        vae=_tiny_vae_2d(), text_encoder=CLIPTextModel(config), text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer, tokenizer_2=tiny_clip_tokenizer(), unet=_tiny_sdxl_unet(),
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         timestep_spacing="leading", steps_offset=1))
    target.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(target)
    return target


def build_tiny_sdxl_lora(unet_dir: Path, target: Path, rank: int = 2) -> Path:
    """Save a random LoRA for the tiny SDXL UNet (in ``unet_dir/unet``) as one .safetensors file."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(1)
    unet = UNet2DConditionModel.from_pretrained(unet_dir, subfolder="unet")
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    with torch.no_grad():  # make the LoRA change the output clearly
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    target.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(target.parent, unet_lora_layers=get_peft_model_state_dict(unet),
                                                weight_name=target.name)
    return target


# --- InstantID -----------------------------------------------------------------------------
def build_tiny_instantid(sdxl_dir: Path, target: Path, num_tokens: int = 4) -> Path:
    """Save a tiny IdentityNet (``ControlNetModel/``) and ``ip-adapter.safetensors`` beside it.

    The layout mirrors the published InstantID weights: a ControlNet folder and one file
    holding the face-embedding projection (``image_proj.*``) and the attention weights
    (``ip_adapter.<index>.to_k_ip.weight``...).
    """
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel
    from safetensors.torch import save_file

    from engines.local.instantid.projection import FaceResampler, ip_attention_layers

    torch.manual_seed(2)
    unet = UNet2DConditionModel.from_pretrained(sdxl_dir, subfolder="unet")
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 8, 8))
    target.mkdir(parents=True, exist_ok=True)
    controlnet.save_pretrained(target / "ControlNetModel")
    cross_dim = unet.config.cross_attention_dim
    proj = FaceResampler(dim=32, depth=1, dim_head=8, heads=4, num_queries=num_tokens, embedding_dim=512,
                         output_dim=cross_dim, ff_mult=2)
    layers = ip_attention_layers(unet)
    tensors = {f"image_proj.{k}": v.contiguous() for k, v in proj.state_dict().items()}
    for index, hidden in layers.items():
        for name in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{index}.{name}.weight"] = torch.randn(hidden, cross_dim) * 0.2
    save_file(tensors, str(target / "ip-adapter.safetensors"))
    return target


# --- SVD -----------------------------------------------------------------------------------
def build_tiny_svd(target: Path) -> Path:
    """Save a tiny StableVideoDiffusionPipeline (64x64 frames) to ``target``."""
    import torch
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=(2, 4), projection_class_embeddings_input_dim=24,
        addition_time_embed_dim=8)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 32, 32, 32], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D"] * 4, latent_channels=4,
                                       layers_per_block=1)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       interpolation_type="linear", num_train_timesteps=1000,
                                       prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
                                       steps_offset=1, timestep_spacing="leading", timestep_type="continuous",
                                       use_karras_sigmas=True)
    pipe = StableVideoDiffusionPipeline(
        vae=vae, image_encoder=_tiny_clip_vision(224, 32), unet=unet, scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224))
    target.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(target)
    return target


# --- Wan I2V -------------------------------------------------------------------------------
def build_tiny_wan_i2v(target: Path) -> Path:
    """Save a tiny WanImageToVideoPipeline (CLIP image encoder + image-conditioned transformer)."""
    import torch
    from diffusers import (AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline,
                           WanTransformer3DModel)
    from transformers import CLIPImageProcessor, T5Tokenizer, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    tokenizer = T5Tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37,
                                               num_layers=2, num_heads=4, relative_attention_num_buckets=8))
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, image_dim=32, added_kv_proj_dim=24)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), image_encoder=_tiny_clip_vision(32, 4, projection=False),
        image_processor=CLIPImageProcessor(crop_size=32, size=32))
    target.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(target)
    return target
