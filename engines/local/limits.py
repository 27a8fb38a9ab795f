"""How much one local run may ask for, checked before the job is stored (``engine.check``).

Each local engine has a budget of pixels × frames (or × images) per run, a small multiple of
what its model was trained on. A request above it would either fail for lack of memory or
take so long per step that it never finishes; it is refused up front with a message that names
the limit. (A cancel can always stop a run: see app/isolation.py. The budget keeps people from
starting one that cannot end.)
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ValidationError


@dataclass(frozen=True)
class Budget:
    width: int
    height: int
    count: int  # frames (video) or images (a batch) of the example that uses the whole budget
    unit: str = "frames"  # frames | images

    @property
    def total(self) -> int:
        return self.width * self.height * self.count


UNIT_ZH = {"frames": "帧", "images": "张"}


def run_size(params) -> tuple[int, int, int, str] | None:
    """(width, height, count, unit) of a request, or None when its Params have no size."""
    width, height = getattr(params, "width", None), getattr(params, "height", None)
    if width is None or height is None:
        return None
    if getattr(params, "num_frames", None) is not None:
        return width, height, params.num_frames, "frames"
    return width, height, getattr(params, "num_images", None) or 1, "images"


def check_budget(engine_id: str, budget: Budget | None, params) -> None:
    """Raise ``ValidationError`` when ``params`` ask for more than ``budget``."""
    size = run_size(params)
    if budget is None or size is None:
        return
    width, height, count, unit = size
    asked = width * height * count
    if asked <= budget.total:
        return
    limit = f"{budget.total:,}"
    example = f"{budget.width}×{budget.height} × {budget.count} {budget.unit}"
    example_zh = f"{budget.width}×{budget.height}、{budget.count} {UNIT_ZH[budget.unit]}"
    raise ValidationError(
        f"{engine_id} makes at most {limit} pixels × {unit} in one run (width × height × {unit}; "
        f"e.g. {example}). This request asks for {width}×{height} × {count} = {asked:,}. "
        f"Lower the size or the number of {unit}.",
        f"{engine_id} 单次最多生成 {limit} 像素×{UNIT_ZH[unit]}（宽×高×{UNIT_ZH[unit]}数，例如 {example_zh}）。"
        f"本次请求为 {width}×{height}×{count} = {asked:,}。请降低分辨率或{UNIT_ZH[unit]}数。")
