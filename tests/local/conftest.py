"""Fixtures for the local engines: tiny random-weight model folders (built once per session),
workspaces with them installed where each engine looks, and a tiny face analyser."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import install_weights


@dataclass(frozen=True)
class Case:
    """How to run one engine fast on its tiny weights, and what it must produce."""

    engine_id: str
    weights: tuple[tuple[str, str], ...]  # (fixture giving a folder, models/<name>)
    params: dict
    kind: str  # image | video
    size: tuple[int, int]  # width, height
    frames: int | None = None
    image_role: str | None = None  # first_frame | reference: the input image it needs
    extra: dict = field(default_factory=dict)


CASES = [
    Case("wan2.1-t2v-1.3b", (("tiny_wan_dir", "wan2.1-t2v-1.3b"),),
         {"width": 48, "height": 32, "num_frames": 5, "fps": 8}, "video", (48, 32), 5),
    Case("wan2.1-i2v-480p", (("tiny_wan_i2v_dir", "wan2.1-i2v-480p"),),
         {"width": 32, "height": 48, "num_frames": 5, "fps": 8}, "video", (32, 48), 5, "first_frame"),
    Case("sdxl", (("tiny_sdxl_dir", "sdxl"),), {"width": 64, "height": 80}, "image", (64, 80)),
    Case("sdxl-instantid", (("tiny_sdxl_dir", "sdxl"), ("tiny_instantid_dir", "sdxl-instantid")),
         {"width": 80, "height": 64}, "image", (80, 64), None, "reference"),
    Case("svd-xt", (("tiny_svd_dir", "svd-xt"),),
         {"width": 64, "height": 80, "num_frames": 3, "decode_chunk_size": 2, "fps": 6}, "video", (64, 80), 3,
         "first_frame"),
]


class TinyFaceAnalyzer:
    """Stands in for insightface: a tiny random conv net turns the image into a 512-d identity
    (so different faces give different embeddings); the keypoints sit where a centred face's would."""

    def __init__(self, seed: int = 0):
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.AdaptiveAvgPool2d(4),
                                       torch.nn.Flatten(), torch.nn.Linear(64, 512))
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.calls = 0

    def detect(self, image):
        import numpy as np
        import torch

        from engines.local.instantid.face import Face

        self.calls += 1
        pixels = np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.float32) / 255.0
        with torch.no_grad():
            emb = self.net(torch.from_numpy(pixels).permute(2, 0, 1)[None])[0]
        emb = emb / emb.norm() * 20.0
        w, h = image.size
        rel = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.7], [0.62, 0.7]], dtype=np.float32)
        return Face(emb.numpy(), rel * np.array([w, h], dtype=np.float32), (0.2 * w, 0.2 * h, 0.8 * w, 0.8 * h))


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-weights")


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tiny_root) -> Path:
    from tests.tiny_models import build_tiny_sdxl

    return build_tiny_sdxl(tiny_root / "sdxl")


@pytest.fixture(scope="session")
def tiny_instantid_dir(tiny_root, tiny_sdxl_dir) -> Path:
    from tests.tiny_models import build_tiny_instantid

    return build_tiny_instantid(tiny_sdxl_dir, tiny_root / "sdxl-instantid")


@pytest.fixture(scope="session")
def tiny_svd_dir(tiny_root) -> Path:
    from tests.tiny_models import build_tiny_svd

    return build_tiny_svd(tiny_root / "svd-xt")


@pytest.fixture(scope="session")
def tiny_wan_i2v_dir(tiny_root) -> Path:
    from tests.tiny_models import build_tiny_wan_i2v

    return build_tiny_wan_i2v(tiny_root / "wan2.1-i2v")


@pytest.fixture(scope="session")
def tiny_lora(tiny_root, tiny_sdxl_dir) -> Path:
    from tests.tiny_models import build_tiny_sdxl_lora

    return build_tiny_sdxl_lora(tiny_sdxl_dir, tiny_root / "loras" / "xian style.safetensors")


def install_case(request, workspace: Path, case: Case) -> None:
    for fixture, name in case.weights:
        if not (workspace / "models" / name).exists():
            install_weights(workspace, name, request.getfixturevalue(fixture))


def make_engine(settings, engine_id: str, cache=None):
    from engines.registry import ENGINE_CLASSES

    cls = next(c for c in ENGINE_CLASSES if c.id == engine_id)
    engine = cls(settings, None, cache=cache)
    if engine_id == "sdxl-instantid":
        engine.face_analyzer = TinyFaceAnalyzer()
    return engine


def face_image(path: Path, seed: int = 0, size: tuple[int, int] = (96, 80)) -> Path:
    """A random RGB picture standing in for a reference photo / first frame."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path
