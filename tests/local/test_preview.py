"""Live previews: latents → a small PNG beside the job, changing as the latents change."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize(("layout", "shape"), [("bcfhw", (1, 16, 3, 6, 8)), ("bfchw", (1, 5, 4, 6, 8)),
                                               ("bchw", (1, 4, 6, 8))])
def test_previews_are_written_every_few_steps_and_change_with_the_latents(tmp_path, layout, shape):
    from PIL import Image

    from engines.local.preview import MIN_SIDE, Previewer

    clock = Clock()
    pv = Previewer(tmp_path, layout, total=20, clock=clock)
    gen = torch.Generator().manual_seed(0)
    first = pv.maybe(2, torch.randn(shape, generator=gen))
    assert first is not None and first.name == "preview.png"
    before = first.read_bytes()
    with Image.open(first) as im:
        assert max(im.size) >= MIN_SIDE and im.mode == "RGB"
    assert pv.maybe(3, torch.randn(shape, generator=gen)) is None  # not a preview step
    assert pv.maybe(4, torch.randn(shape, generator=gen)) is None  # too soon after the last
    clock.now += 5
    again = pv.maybe(4, torch.randn(shape, generator=gen))
    assert again == first and again.read_bytes() != before
    assert pv.maybe(20, torch.randn(shape, generator=gen)) is None and not first.exists()  # done: removed


def test_a_broken_preview_never_fails_the_job(tmp_path):
    from engines.local.preview import Previewer

    pv = Previewer(tmp_path / "file-not-dir", "bchw", total=8)
    (tmp_path / "file-not-dir").write_text("x")  # the folder cannot be made
    assert pv.maybe(4, torch.randn(1, 4, 8, 8)) is None and pv.failed
    assert pv.maybe(4, torch.randn(1, 4, 8, 8)) is None
