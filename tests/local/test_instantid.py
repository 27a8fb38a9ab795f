"""The studio's InstantID pieces: face tokens through the attention processors, IdentityNet on the
keypoint image, the weights formats, and the insightface detector where its models exist."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from engines.base import EngineRequest, ImageInput

from .conftest import CASES, TinyFaceAnalyzer, face_image, install_case, make_engine

CASE = next(c for c in CASES if c.engine_id == "sdxl-instantid")


@pytest.fixture(scope="module")
def iid(request, tmp_path_factory):
    from app.settings import load_settings

    ws = tmp_path_factory.mktemp("iid")
    install_case(request, ws, CASE)
    return make_engine(load_settings(ws), CASE.engine_id), face_image(ws / "face.png")


def generate(engine, ref, tmp_path, name, **params):
    workdir = tmp_path / name
    workdir.mkdir()
    p = engine.Params.model_validate({"width": 64, "height": 64, "num_inference_steps": 2, "seed": 3, **params})
    out = engine.run(EngineRequest(name, "a swordswoman", "", p, workdir, [ImageInput("reference", ref)]),
                     lambda *a: None, lambda: False)
    from PIL import Image

    return np.asarray(Image.open(out[0].path)).astype(int)


def test_face_identity_and_strengths_change_the_image(iid, tmp_path):
    engine, ref = iid
    base = generate(engine, ref, tmp_path, "base")
    engine.face_analyzer = TinyFaceAnalyzer(seed=1)  # another identity
    try:
        other_face = generate(engine, ref, tmp_path, "face")
    finally:
        engine.face_analyzer = TinyFaceAnalyzer()
    no_id = generate(engine, ref, tmp_path, "off", identity_strength=0.0, ip_adapter_scale=0.0)
    assert np.abs(base - other_face).mean() > 0.5
    assert np.abs(base - no_id).mean() > 0.5
    assert np.array_equal(base, generate(engine, ref, tmp_path, "again"))


def test_face_processor_at_scale_zero_is_plain_attention(tiny_sdxl_dir, tiny_instantid_dir):
    import torch
    from diffusers import UNet2DConditionModel

    from engines.local.instantid.projection import (
        install_face_adapter,
        read_face_adapter,
    )

    unet = UNet2DConditionModel.from_pretrained(tiny_sdxl_dir, subfolder="unet").eval()
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, generator=gen)
    text = torch.randn(1, 77, 64, generator=gen)
    face = torch.randn(1, 4, 64, generator=gen)
    added = {"text_embeds": torch.randn(1, 32, generator=gen), "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    with torch.no_grad():
        plain = unet(latents, 10, encoder_hidden_states=text, added_cond_kwargs=added).sample
        _, ip_state = read_face_adapter(tiny_instantid_dir / "ip-adapter.safetensors")
        procs = install_face_adapter(unet, ip_state, num_tokens=4)
        for proc in procs.values():
            proc.scale = 0.0
        joined = torch.cat([text, face], dim=1)
        off = unet(latents, 10, encoder_hidden_states=joined, added_cond_kwargs=added).sample
        for proc in procs.values():
            proc.scale = 1.0
        on = unet(latents, 10, encoder_hidden_states=joined, added_cond_kwargs=added).sample
    torch.testing.assert_close(off, plain, rtol=1e-4, atol=1e-5)
    assert (on - plain).abs().mean() > 1e-3


def test_published_bin_layout_loads_like_safetensors(tiny_instantid_dir, tmp_path):
    import torch

    from engines.local.instantid.projection import FaceResampler, read_face_adapter

    proj, ip = read_face_adapter(tiny_instantid_dir / "ip-adapter.safetensors")
    torch.save({"image_proj": proj, "ip_adapter": ip}, tmp_path / "ip-adapter.bin")
    proj_bin, ip_bin = read_face_adapter(tmp_path / "ip-adapter.bin")
    assert set(ip_bin) == set(ip) and all(k.split(".")[1] in ("to_k_ip", "to_v_ip") for k in ip)
    model = FaceResampler.from_state_dict(proj_bin)
    tokens = model(torch.randn(2, 1, 512))
    assert tokens.shape == (2, 4, 64)


def test_keypoints_are_drawn_where_the_face_is():
    from engines.local.instantid.face import KPS_COLORS, draw_keypoints, fit_keypoints

    kps = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], dtype=np.float32)
    img = np.asarray(draw_keypoints(100, 120, kps))
    for (x, y), color in zip(kps.astype(int), KPS_COLORS):
        assert tuple(img[y, x]) == color
    assert img[5, 5].tolist() == [0, 0, 0]
    # a 200x100 picture centre-cropped into 100x100: x shifts by half the overflow
    moved = fit_keypoints([[100, 50]], (200, 100), 100, 100)
    np.testing.assert_allclose(moved, [[50, 50]])


def test_unavailable_without_face_models_says_where(tmp_path, tiny_sdxl_dir, tiny_instantid_dir):
    from app.settings import load_settings
    from engines.local.sdxl_instantid import SdxlInstantIdEngine
    from tests.conftest import install_weights

    install_weights(tmp_path, "sdxl", tiny_sdxl_dir)
    install_weights(tmp_path, "sdxl-instantid", tiny_instantid_dir)
    settings = load_settings(tmp_path)
    ok, reason = SdxlInstantIdEngine(settings).available()  # no analyser given: insightface
    have_pkgs = all(importlib.util.find_spec(p) for p in ("insightface", "onnxruntime"))
    assert not ok
    assert ("antelopev2" in reason and str(settings.models_dir / "insightface") in reason) if have_pkgs \
        else "pip install insightface" in reason


def _antelope_dir():
    import os
    from pathlib import Path

    root = Path(os.environ.get("XIANYING_INSIGHTFACE_ROOT", "workspace/models/insightface"))
    return root


@pytest.mark.skipif(not all(importlib.util.find_spec(p) for p in ("insightface", "onnxruntime")),
                    reason="insightface and onnxruntime are not installed (pip install insightface onnxruntime)")
def test_insightface_detector_finds_a_face():
    from engines.local.instantid.face import InsightFaceAnalyzer, insightface_status

    root = _antelope_dir()
    ok, why = insightface_status(root)
    if not ok:
        pytest.skip(f"antelopev2 models absent: {why}")
    from pathlib import Path

    import insightface
    from PIL import Image

    sample = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
    if not sample.exists():
        pytest.skip("insightface's sample photo t1.jpg is not shipped with this install")
    face = InsightFaceAnalyzer(root).detect(Image.open(sample))
    assert np.asarray(face.embedding).shape == (512,) and np.asarray(face.keypoints).shape == (5, 2)


def test_sdxl_and_instantid_share_one_sdxl_copy(request, tmp_path, tiny_lora):
    """On one device without offload, the two engines hold one SDXL between them; an InstantID
    run (with a LoRA) leaves the plain SDXL engine's output exactly as it was."""
    import shutil

    from app.settings import load_settings
    from engines.local.weights import PipelineCache

    install_case(request, tmp_path, CASE)
    (tmp_path / "models" / "loras").mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_lora, tmp_path / "models" / "loras" / tiny_lora.name)
    settings = load_settings(tmp_path)
    cache = PipelineCache(2**40)
    sdxl, iid = make_engine(settings, "sdxl", cache), make_engine(settings, CASE.engine_id, cache)
    ref = face_image(tmp_path / "face.png")

    def still(engine, name, **params):
        return generate(engine, ref, tmp_path, name, **params)

    before = still(sdxl, "sdxl-1")
    face = still(iid, "iid-1")
    styled = still(iid, "iid-lora", loras=[{"name": tiny_lora.stem, "weight": 1.0}])
    after = still(sdxl, "sdxl-2")
    assert np.array_equal(before, after)  # face processors and the LoRA are gone again
    assert np.abs(face - styled).mean() > 0.5
    assert np.array_equal(face, still(iid, "iid-2"))
    assert sorted(k[0] for k in cache.keys()) == ["sdxl", "sdxl-instantid/parts"]
    assert cache.loads == 2  # SDXL once, InstantID's own parts once


def test_own_copy_for_offload_draws_the_same_image(iid, tmp_path):
    """Under offload the engine loads a pipeline of its own (hooks belong to one pipeline): it
    has the face processors installed and draws what the shared path draws."""
    import torch
    from PIL import Image

    from engines.local.instantid.face import draw_keypoints, fit_keypoints
    from engines.local.instantid.projection import face_processors

    engine, ref = iid
    shared = generate(engine, ref, tmp_path, "shared", seed=4)
    own = engine.load(engine.weights().path, torch.device("cpu"), torch.float32)
    assert all(p is own._face_procs[str(i)] for i, p in enumerate(own.unet.attn_processors.values())
               if str(i) in own._face_procs)
    image = Image.open(ref)
    face = engine.analyzer().detect(image)
    kps = draw_keypoints(64, 64, fit_keypoints(face.keypoints, image.size, 64, 64))
    with face_processors(own.unet, own._face_procs):  # installed already: a no-op
        out = own(prompt="a swordswoman", face_embedding=face.embedding, keypoints_image=kps, width=64, height=64,
                  num_inference_steps=2, guidance_scale=5.0, ip_adapter_scale=0.8,
                  controlnet_conditioning_scale=0.8, generator=[torch.Generator().manual_seed(4)])
    assert np.array_equal(shared, np.asarray(out[0]).astype(int))
