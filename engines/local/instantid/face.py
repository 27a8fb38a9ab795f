"""Face analysis behind a small interface, insightface (antelopev2) as the real detector, and
the keypoint image IdentityNet is conditioned on.

Any object with ``detect(image) -> Face`` will do as a ``FaceAnalyzer``: the engine takes one
in its constructor (tests pass a tiny model), and otherwise builds ``InsightFaceAnalyzer``.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import ValidationError
from engines.base import Reason

ANTELOPE_FILES = ("scrfd_10g_bnkps.onnx", "glintr100.onnx")  # detector + recognition model
# IdentityNet was trained on keypoints drawn in these colours: eyes, nose, mouth corners
KPS_COLORS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))
KPS_LIMBS = ((0, 2), (1, 2), (3, 2), (4, 2))  # every point joined to the nose


@dataclass
class Face:
    embedding: object  # (512,) float array: the identity
    keypoints: object  # (5, 2) pixel coordinates: left eye, right eye, nose, mouth left, mouth right
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


class FaceAnalyzer(Protocol):
    def detect(self, image) -> Face:
        """The largest face in a PIL image; ``ValidationError`` when there is none."""


def insightface_root(settings) -> Path:
    return settings.models_dir / "insightface"


def insightface_status(root: Path, name: str = "antelopev2") -> tuple[bool, str]:
    folder = root / "models" / name
    missing_pkgs = [p for p in ("insightface", "onnxruntime") if importlib.util.find_spec(p) is None]
    if missing_pkgs:
        return False, Reason(f"Face analysis needs {' and '.join(missing_pkgs)}: pip install insightface "
                             "onnxruntime-gpu (or onnxruntime on a machine without CUDA).",
                             f"人脸分析需要 {'、'.join(missing_pkgs)}：pip install insightface onnxruntime-gpu"
                             "（没有 CUDA 的机器用 onnxruntime）。")
    missing = [f for f in ANTELOPE_FILES if not (folder / f).exists()]
    if missing:
        return False, Reason(f"The {name} face models are missing ({', '.join(missing)}): unzip {name}.zip so "
                             f"that its .onnx files lie directly in {folder}.",
                             f"缺少 {name} 人脸模型（{', '.join(missing)}）：解压 {name}.zip，使其 .onnx 文件直接位于 "
                             f"{folder}。")
    return True, Reason(f"face models: {folder}", f"人脸模型：{folder}")


class InsightFaceAnalyzer:
    """insightface's ``FaceAnalysis`` with the antelopev2 pack, on onnxruntime (CUDA when there)."""

    def __init__(self, root: Path, name: str = "antelopev2", det_size: int = 640):
        self.root, self.name, self.det_size = Path(root), name, det_size
        self._app = None

    def available(self) -> tuple[bool, str]:
        return insightface_status(self.root, self.name)

    def _analysis(self):
        if self._app is None:
            import onnxruntime
            from insightface.app import FaceAnalysis

            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                         if p in onnxruntime.get_available_providers()]
            app = FaceAnalysis(name=self.name, root=str(self.root), providers=providers,
                               allowed_modules=["detection", "recognition"])
            app.prepare(ctx_id=0, det_size=(self.det_size, self.det_size))
            self._app = app
        return self._app

    def detect(self, image) -> Face:
        import numpy as np

        bgr = np.asarray(image.convert("RGB"))[:, :, ::-1].copy()
        faces = self._analysis().get(bgr)
        if not faces:
            raise ValidationError("No face was found in the reference image: use a clear, front-facing photo.",
                                  "参考图中没有检测到人脸：请使用清晰的正脸照片。")
        face = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        return Face(np.asarray(face.embedding, dtype=np.float32), np.asarray(face.kps, dtype=np.float32),
                    tuple(float(v) for v in face.bbox))


def fit_keypoints(keypoints, src_size: tuple[int, int], width: int, height: int):
    """Map keypoints through the centre-crop-and-resize that fits ``src_size`` to width x height."""
    import numpy as np

    sw, sh = src_size
    scale = max(width / sw, height / sh)
    offset = np.array([(sw * scale - width) / 2, (sh * scale - height) / 2], dtype=np.float32)
    return np.asarray(keypoints, dtype=np.float32) * scale - offset


def draw_keypoints(width: int, height: int, keypoints, stick: int = 4, radius: int = 10):
    """The control image: the five keypoints and the limbs to the nose on black."""
    import numpy as np
    from PIL import Image, ImageDraw

    kps = np.asarray(keypoints, dtype=np.float32)
    limbs = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(limbs)
    for a, b in KPS_LIMBS:
        (x0, y0), (x1, y1) = kps[a], kps[b]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half = math.hypot(x1 - x0, y1 - y0) / 2
        angle = math.atan2(y1 - y0, x1 - x0)
        ca, sa = math.cos(angle), math.sin(angle)
        points = []
        for k in range(36):  # an ellipse along the limb, ``stick`` pixels thick
            t = 2 * math.pi * k / 36
            ex, ey = half * math.cos(t), stick * math.sin(t)
            points.append((cx + ex * ca - ey * sa, cy + ex * sa + ey * ca))
        draw.polygon(points, fill=KPS_COLORS[a])
    canvas = Image.fromarray((np.asarray(limbs, dtype=np.float32) * 0.6).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for (x, y), color in zip(kps, KPS_COLORS):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)
    return canvas
