"""Face embedding → cross-attention tokens, and the attention processors that read them.

The resampler is a small perceiver: learned query tokens attend to the projected 512-d face
embedding (and to themselves) through a few attention + feed-forward layers, then project to
the UNet's cross-attention width. Each UNet cross-attention layer gets a processor with its own
key/value projections for those tokens; their result is added to the text attention, scaled by
``scale``. Parameter names follow the published InstantID weights so its ``ip-adapter.bin``
loads as is.

This module imports torch at the top (its classes are ``nn.Module``s): only the engine's
``load`` imports it, when a job runs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class _LatentAttention(nn.Module):
    """Queries from the latents; keys and values from the inputs and the latents together."""

    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, latents):
        x, latents = self.norm1(x), self.norm2(latents)
        b, n, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([x, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    inner = dim * mult
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(),
                         nn.Linear(inner, dim, bias=False))


class FaceResampler(nn.Module):
    """(batch, 1, embedding_dim) face embeddings → (batch, num_queries, output_dim) tokens."""

    def __init__(self, dim: int = 1280, depth: int = 4, dim_head: int = 64, heads: int = 20,
                 num_queries: int = 16, embedding_dim: int = 512, output_dim: int = 2048, ff_mult: int = 4):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / math.sqrt(dim))
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([_LatentAttention(dim, dim_head, heads), _feed_forward(dim, ff_mult)])
            for _ in range(depth))

    @property
    def dtype(self) -> torch.dtype:
        return self.latents.dtype

    @property
    def device(self) -> torch.device:
        return self.latents.device

    @classmethod
    def from_state_dict(cls, state: dict, embedding_dim: int = 512) -> FaceResampler:
        """Infer the sizes from the weights themselves, then load them."""
        _, num_queries, dim = state["latents"].shape
        depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers."))
        inner = state["layers.0.0.to_q.weight"].shape[0]
        ff_inner = state["layers.0.1.1.weight"].shape[0]
        dim_head = 64 if inner % 64 == 0 else 8  # the published weights: 20 heads of 64
        model = cls(dim=dim, depth=depth, dim_head=dim_head, heads=inner // dim_head, num_queries=num_queries,
                    embedding_dim=state["proj_in.weight"].shape[1], output_dim=state["proj_out.weight"].shape[0],
                    ff_mult=ff_inner // dim)
        model.load_state_dict(state)
        return model

    def forward(self, x):
        latents = self.latents.repeat(x.size(0), 1, 1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))


class FaceAttnProcessor(nn.Module):
    """Cross-attention over ``[text tokens | face tokens]``: text attention plus ``scale`` times
    attention over the last ``num_tokens`` through this layer's own ``to_k_ip``/``to_v_ip``."""

    def __init__(self, hidden_size: int, cross_attention_dim: int, num_tokens: int):
        super().__init__()
        self.to_k_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.to_v_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.num_tokens = num_tokens
        self.scale = 1.0

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        residual = hidden_states
        four_d = hidden_states.ndim == 4
        if four_d:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        batch = hidden_states.shape[0]
        text, face = encoder_hidden_states[:, :-self.num_tokens], encoder_hidden_states[:, -self.num_tokens:]
        if attn.norm_cross:
            text = attn.norm_encoder_hidden_states(text)

        def heads(t):
            return t.view(batch, -1, attn.heads, t.shape[-1] // attn.heads).transpose(1, 2)

        q = heads(attn.to_q(hidden_states))
        out = F.scaled_dot_product_attention(q, heads(attn.to_k(text)), heads(attn.to_v(text)))
        if self.scale:
            face_out = F.scaled_dot_product_attention(q, heads(self.to_k_ip(face)), heads(self.to_v_ip(face)))
            out = out + self.scale * face_out
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * q.shape[-1]).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if four_d:
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def ip_attention_layers(unet) -> OrderedDict[str, int]:
    """``{index: hidden size}`` of the UNet's cross-attention layers, indexed in
    ``unet.attn_processors`` order (the numbering the InstantID weights use)."""
    widths = list(unet.config.block_out_channels)
    layers: OrderedDict[str, int] = OrderedDict()
    for index, name in enumerate(unet.attn_processors):
        if not name.endswith("attn2.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = widths[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(widths))[int(name.split(".")[1])]
        else:
            hidden = widths[int(name.split(".")[1])]
        layers[str(index)] = hidden
    return layers


def read_face_adapter(path: Path) -> tuple[dict, dict]:
    """(image_proj state, ip_adapter state) from ``ip-adapter.bin`` or ``.safetensors``."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(str(path))
        parts: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
        for key, value in flat.items():
            head, _, rest = key.partition(".")
            parts.setdefault(head, {})[rest] = value
        return parts["image_proj"], parts["ip_adapter"]
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state["image_proj"], state["ip_adapter"]


def build_face_processors(unet, ip_state: dict, num_tokens: int) -> nn.ModuleDict:
    """One ``FaceAttnProcessor`` per cross-attention layer of ``unet``, loaded from ``ip_state``
    (keyed by the layer's index in ``unet.attn_processors``)."""
    cross_dim = unet.config.cross_attention_dim
    procs = nn.ModuleDict({i: FaceAttnProcessor(h, cross_dim, num_tokens)
                           for i, h in ip_attention_layers(unet).items()})
    procs.load_state_dict(ip_state)
    return procs.to(device=unet.device, dtype=unet.dtype)


def _table(unet, procs: nn.ModuleDict) -> dict:
    current = unet.attn_processors
    return {name: procs[str(i)] if str(i) in procs else current[name] for i, name in enumerate(current)}


def set_face_processors(unet, procs: nn.ModuleDict) -> None:
    """Install ``procs`` in ``unet``'s cross-attention layers for good (a UNet of its own)."""
    unet.set_attn_processor(_table(unet, procs))


def install_face_adapter(unet, ip_state: dict, num_tokens: int) -> nn.ModuleDict:
    """Give every cross-attention layer a ``FaceAttnProcessor`` loaded from ``ip_state``, for good."""
    procs = build_face_processors(unet, ip_state, num_tokens)
    set_face_processors(unet, procs)
    return procs


@contextmanager
def face_processors(unet, procs: nn.ModuleDict):
    """``procs`` in ``unet``'s cross-attention layers for the block, the previous ones after: a
    UNet shared with the plain SDXL engine reads face tokens only inside an InstantID run."""
    before = unet.attn_processors
    table = _table(unet, procs)
    if all(table[name] is before[name] for name in before):  # already installed (its own copy)
        yield
        return
    unet.set_attn_processor(table)
    try:
        yield
    finally:
        unet.set_attn_processor(before)
