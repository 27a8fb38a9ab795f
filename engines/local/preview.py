"""Live previews of a running diffusion job: the latents projected to RGB, no VAE.

The projection is linear and learned from the latents themselves: at the first preview of a
run, the top three principal directions of the latent channels become R, G and B, and stay
fixed for the run, so later previews show the picture forming, in stable false colours.
It costs one small matrix product per preview (a C×C covariance once), on a frame of the
latents (Wan: the middle frame of [B, C, F, H, W]; SVD: of [B, F, C, H, W]; SDXL: [B, C, H, W]).

``Previewer(workdir, layout, total).maybe(step, latents)`` writes ``workdir/preview.png`` (at most
``MAX_SIDE`` px) every few steps, no more often than ``MIN_INTERVAL_S``, and returns its path
(or None). The Queue shows it on the job's row (app/ui/queue_view.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

NAME = "preview.png"
MAX_SIDE = 160
MIN_SIDE = 64
MIN_INTERVAL_S = 2.0  # with ~90 ms a preview on a busy 2-core CPU: at most ~4.5% of a run
PREVIEWS_PER_RUN = 10


def frame_of(latents, layout: str):
    """One [C, H, W] frame of the first batch item."""
    x = latents.detach()[0]
    if layout == "bcfhw":
        return x[:, x.shape[1] // 2]
    if layout == "bfchw":
        return x[x.shape[0] // 2]
    return x


class Previewer:
    def __init__(self, workdir: Path, layout: str = "bchw", total: int = 50, clock=time.monotonic):
        self.path = Path(workdir) / NAME
        self.layout = layout
        self.every = max(1, total // PREVIEWS_PER_RUN)
        self.total = total
        self.clock = clock
        self.last = None
        self.projection = None
        self.failed = False

    def due(self, step: int) -> bool:
        if self.failed or step % self.every:
            return False
        return self.last is None or self.clock() - self.last >= MIN_INTERVAL_S

    def rgb(self, latents):
        """[H, W, 3] uint8 (a numpy array) from the latents."""
        import torch

        x = frame_of(latents, self.layout)
        stride = max(1, -(-max(x.shape[-2:]) // MAX_SIDE))  # no more latent pixels than the PNG has
        x = x[:, ::stride, ::stride].float().cpu()
        c, h, w = x.shape
        flat = x.reshape(c, -1)
        flat = flat - flat.mean(dim=1, keepdim=True)
        if self.projection is None:
            cov = flat @ flat.T / max(1, flat.shape[1] - 1)
            _, vectors = torch.linalg.eigh(cov)  # ascending: the last three are the strongest
            proj = vectors[:, -3:].flip(1).T if c >= 3 else torch.eye(3, c)
            signs = torch.sign(proj.sum(dim=1, keepdim=True))
            self.projection = proj * torch.where(signs == 0, torch.ones_like(signs), signs)
        rgb = self.projection @ flat  # [3, H*W]
        mean, std = rgb.mean(dim=1, keepdim=True), rgb.std(dim=1, keepdim=True).clamp(min=1e-6)
        rgb = ((rgb - mean) / (4 * std) + 0.5).clamp(0, 1)  # ±2 standard deviations fill the range
        return (rgb.reshape(3, h, w).permute(1, 2, 0) * 255).to(torch.uint8).numpy()

    def write(self, latents) -> Path:
        from PIL import Image

        from core.platform import replace_with_retry

        image = Image.fromarray(self.rgb(latents))
        w, h = image.size
        scale = MAX_SIDE / max(w, h) if max(w, h) > MAX_SIDE else max(1.0, MIN_SIDE / max(w, h))
        if scale != 1.0:
            image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                 Image.NEAREST if scale > 1 else Image.BILINEAR)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.png")
        image.save(tmp, optimize=False, compress_level=1)
        replace_with_retry(tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the preview: the run ended (its outputs hold no preview) or was cancelled."""
        for path in (self.path, self.path.with_suffix(".tmp.png")):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    def maybe(self, step: int, latents) -> Path | None:
        if step >= self.total:  # denoising is done: the decode follows, and the folder becomes the output
            self.discard()
            return None
        if latents is None or not self.due(step):
            return None
        self.last = self.clock()
        try:
            return self.write(latents)
        except Exception:  # a preview must never fail the job
            log.warning("preview failed; no more previews for this run", exc_info=True)
            self.failed = True
            return None
