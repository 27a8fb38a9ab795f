"""The one check for an image a person gives the studio (upload, data URI, reference face).

``check_image(data)`` reads only the header first: the size in pixels is refused before any
pixel is decoded, so a 389 KB PNG that claims 20000×20000 costs nothing and gets a clear
message naming the limit (Pillow's own bomb check would raise an internal error instead).
"""

from __future__ import annotations

import io

from .errors import ValidationError

MAX_IMAGE_BYTES = 20 * 2**20
MAX_IMAGE_PIXELS = 40_000_000  # 40 megapixels, e.g. 8000×5000: far above any engine's input size
MAX_IMAGE_SIDE = 16384
FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


def check_image(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, what: str = "image",
                what_zh: str = "图片") -> str:
    """Validate an image's bytes; return its file extension (png, jpg or webp)."""
    if len(data) > max_bytes:
        raise ValidationError(f"{what}: the file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes // 2**20} MB.",
                              f"{what_zh}：文件大小 {len(data) / 2**20:.1f} MB，超过 {max_bytes // 2**20} MB 上限。")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header, decodes nothing
            fmt, (width, height) = im.format, im.size
            if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_IMAGE_SIDE:
                raise ValidationError(
                    f"{what}: {width}×{height} pixels is too large; the limit is {MAX_IMAGE_PIXELS // 10**6} "
                    f"megapixels (e.g. 8000×5000) and {MAX_IMAGE_SIDE} pixels a side.",
                    f"{what_zh}：{width}×{height} 像素过大；上限为 {MAX_IMAGE_PIXELS // 10**6} 百万像素"
                    f"（如 8000×5000），每边不超过 {MAX_IMAGE_SIDE} 像素。")
            im.verify()
    except ValidationError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses even to open far larger claims
        raise ValidationError(
            f"{what}: the image is too large; the limit is {MAX_IMAGE_PIXELS // 10**6} megapixels "
            f"(e.g. 8000×5000) and {MAX_IMAGE_SIDE} pixels a side.",
            f"{what_zh}：图片过大；上限为 {MAX_IMAGE_PIXELS // 10**6} 百万像素（如 8000×5000），"
            f"每边不超过 {MAX_IMAGE_SIDE} 像素。") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValidationError(f"{what}: the file could not be read as an image (PNG, JPEG or WebP expected).",
                              f"{what_zh}：无法读取图片（请使用 PNG、JPEG 或 WebP）。") from exc
    if fmt not in FORMATS:
        raise ValidationError(f"{what}: {fmt or 'this'} images are not accepted; use PNG, JPEG or WebP.",
                              f"{what_zh}：不支持 {fmt or '该'} 格式；请使用 PNG、JPEG 或 WebP。")
    return FORMATS[fmt]

