"""Warm model cache (issue 4): a second job on the same model pays no load time.

Measured through the product path: a workspace in a temp folder with random-weight pipelines
saved (``save_pretrained``) in ``models/<engine-id>/``, a ``Studio`` started in-process the way
the tests start one, jobs submitted with ``JobService.submit`` and waited on through their rows.

Each run starts a fresh Studio (an empty cache), then per engine: job 1 (cold: the pipeline
loads), job 2 (warm), and, once every engine has run, job 3 (still warm: the other engines'
pipelines did not push it out under the default ``model_cache.max_size_gb``). The load itself
is the time spent in the cache's loader call (this studio's ``PipelineCache.get`` is wrapped
to time the loader it is given; nothing in the product changes) and ``cache.loads`` counts it.
Eviction: a fresh Studio with ``max_size_gb`` between one model and two; jobs on A, B, A: the
third reloads A, the least recently used.

    python bench/warm.py [--runs 3] [--size tiny|small] [--engines wan2.1-t2v-1.3b,sdxl,svd-xt]
                         [--json out.json]

``tiny`` uses the tests' pipelines (tests/tiny_models.py); ``small`` makes the denoisers
bigger (100-130 M parameters, 400-500 MB) so that a load from disk costs about a second on a
CPU, and keeps the jobs short (2 steps) so that the load is a visible share of job 1. Runs on CUDA when
there is one (the engines pick the device). Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import weakref
from pathlib import Path
from app.access import LOCAL, Principal  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_ENGINES = ("wan2.1-t2v-1.3b", "sdxl", "svd-xt")
# job parameters per engine and size: a few real denoising steps, small frames
JOB_PARAMS = {
    "tiny": {"wan2.1-t2v-1.3b": {"width": 32, "height": 32, "num_frames": 5, "num_inference_steps": 4, "fps": 8},
             "sdxl": {"width": 64, "height": 64, "num_inference_steps": 4},
             "svd-xt": {"width": 64, "height": 64, "num_frames": 3, "decode_chunk_size": 3,
                        "num_inference_steps": 4, "fps": 6}},
    "small": {"wan2.1-t2v-1.3b": {"width": 32, "height": 32, "num_frames": 5, "num_inference_steps": 2, "fps": 8},
              "sdxl": {"width": 64, "height": 64, "num_inference_steps": 2},
              "svd-xt": {"width": 64, "height": 64, "num_frames": 3, "decode_chunk_size": 3,
                         "num_inference_steps": 2, "fps": 6}},
}


# --- weights -----------------------------------------------------------------------------
def build_small_wan(target: Path) -> Path:
    """The tiny Wan pipeline with a 16-layer, 640-wide transformer (~105 M parameters)."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    tokenizer = T5Tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=64, d_kv=16, d_ff=128,
                                               num_layers=2, num_heads=4, relative_attention_num_buckets=8))
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=10, attention_head_dim=64, in_channels=16, out_channels=16,
        text_dim=64, freq_dim=256, ffn_dim=2560, num_layers=16, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    pipe.save_pretrained(target)
    return target


def build_small_sdxl(target: Path) -> Path:
    """The tiny SDXL pipeline with a three-level 128/256/512 UNet (~130 M parameters)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from tests.tiny_models import _clip_text_config, _tiny_vae_2d, tiny_clip_tokenizer

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer()
    config = _clip_text_config(len(tokenizer))
    unet = UNet2DConditionModel(
        block_out_channels=(128, 256, 512), layers_per_block=2, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4, 8), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=32)
    pipe = StableDiffusionXLPipeline(
        vae=_tiny_vae_2d(), text_encoder=CLIPTextModel(config), text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer, tokenizer_2=tiny_clip_tokenizer(), unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         timestep_spacing="leading", steps_offset=1))
    pipe.save_pretrained(target)
    return target


def build_small_svd(target: Path) -> Path:
    """The tiny SVD pipeline with a three-level 128/256/512 spatio-temporal UNet (~113 M parameters)."""
    import torch
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor

    from tests.tiny_models import _tiny_clip_vision

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(128, 256, 512), layers_per_block=2, sample_size=8, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                          "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=(2, 4, 8), projection_class_embeddings_input_dim=24,
        addition_time_embed_dim=8)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 32, 32, 32], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D"] * 4, latent_channels=4,
                                       layers_per_block=1)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       interpolation_type="linear", num_train_timesteps=1000,
                                       prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
                                       steps_offset=1, timestep_spacing="leading", timestep_type="continuous",
                                       use_karras_sigmas=True)
    pipe = StableVideoDiffusionPipeline(vae=vae, image_encoder=_tiny_clip_vision(224, 32), unet=unet,
                                        scheduler=scheduler, feature_extractor=CLIPImageProcessor(crop_size=224,
                                                                                                  size=224))
    pipe.save_pretrained(target)
    return target


def builders(size: str) -> dict:
    from tests import tiny_models as tm

    if size == "tiny":
        return {"wan2.1-t2v-1.3b": tm.build_tiny_wan_t2v, "sdxl": tm.build_tiny_sdxl, "svd-xt": tm.build_tiny_svd}
    return {"wan2.1-t2v-1.3b": build_small_wan, "sdxl": build_small_sdxl, "svd-xt": build_small_svd}


def make_workspace(tmp: Path, size: str, engines: list[str]) -> tuple[Path, dict[str, float]]:
    """A workspace whose ``models/<engine-id>/`` hold freshly saved pipelines; (path, MB on disk)."""
    from engines.local.weights import folder_size

    ws = tmp / "ws"
    build = builders(size)
    disk = {}
    for engine_id in engines:
        target = ws / "models" / engine_id
        target.mkdir(parents=True)
        build[engine_id](target)
        disk[engine_id] = folder_size(target) / 2**20
    from PIL import Image

    (ws / "uploads").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (120, 160, 90)).save(ws / "uploads" / "bench.png")  # svd's input frame
    return ws, disk


# --- measuring ---------------------------------------------------------------------------
def drop_page_cache(folder: Path) -> bool:
    """Ask the OS to forget the cached pages of ``folder``'s files (Linux ``posix_fadvise``), so
    the next load reads the disk as after a reboot. Only these files; False where unsupported."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for f in folder.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)  # freshly written pages are dirty: write them first, or they stay
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return True


class LoadMeter:
    """Times every loader the studio's pipeline cache runs (by engine id, the key's first item)."""

    def __init__(self, cache):
        from engines.local.weights import pipeline_bytes

        self.events: list[tuple[str, float, int]] = []  # (engine id, seconds, pipeline bytes)
        self.parts: list[tuple[str, dict]] = []  # (engine id, {component: weakref}) per load
        inner = cache.get

        def get(key, loader):
            def timed():
                t0 = time.perf_counter()
                pipe = loader()
                self.events.append((key[0], time.perf_counter() - t0, pipeline_bytes(pipe)))
                self.parts.append((key[0], {name: weakref.ref(c) for name, c in pipe.components.items()
                                            if callable(getattr(c, "parameters", None))}))
                return pipe

            return inner(key, timed)

        cache.get = get  # this instance only: the engines share it

    def alive(self, engine_id: str) -> list[str]:
        """Components of ``engine_id``'s loads that are still in memory."""
        return sorted({name for e, parts in self.parts if e == engine_id
                       for name, ref in parts.items() if ref() is not None})

    def seconds(self, engine_id: str, since: int = 0) -> float:
        return sum(s for e, s, _ in self.events[since:] if e == engine_id)


def start_studio(ws: Path, **overrides):
    from app.settings import load_settings
    from app.studio import Studio

    studio = Studio(load_settings(ws, **overrides))
    studio.start()
    return studio, LoadMeter(studio.cache)


def run_job(studio, ws: Path, engine_id: str, params: dict, seed: int, row_times: list | None = None) -> float:
    """Submit one job and wait for its row to finish; wall seconds from submit to done. The row's
    own ``finished_at - started_at`` (the engine's share, no queueing) goes to ``row_times``."""
    request = {"engine": engine_id, "prompt": "a crane over misty peaks", "params": {**params, "seed": seed}}
    if engine_id == "svd-xt":
        request["image"] = str(ws / "uploads" / "bench.png")
    t0 = time.perf_counter()
    job_id = studio.service.submit(request, LOCAL, source="bench").id
    while (job := studio.service.get(job_id, LOCAL)).status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.002)
    wall = time.perf_counter() - t0
    if job.status != "succeeded":
        raise RuntimeError(f"{engine_id} job {job.status}: {job.error}")
    if row_times is not None:
        row_times.append(job.finished_at - job.started_at)
    return wall


def cold(ws: Path, engine_id: str, drop: bool) -> None:
    """Make the next load of ``engine_id`` read its files from the disk. An evicted pipeline can
    linger until Python's cyclic GC runs (a Wan transformer that has run sits in a reference
    cycle with its diffusers hook registry), and pages still mapped cannot be dropped: collect first."""
    if drop:
        gc.collect()
        drop_page_cache(ws / "models" / engine_id)


def warm_run(ws: Path, size: str, engines: list[str], drop: bool) -> dict:
    """One fresh studio: job 1 and 2 per engine, then job 3 on each after the others."""
    from app.db import db

    studio, meter = start_studio(ws)
    rows: dict[str, dict] = {}
    try:
        with db.connection_context():
            for engine_id in engines:
                params = JOB_PARAMS[size][engine_id]
                cold(ws, engine_id, drop)
                loads0, ev0 = studio.cache.loads, len(meter.events)
                row_times: list[float] = []
                job1 = run_job(studio, ws, engine_id, params, 1, row_times)
                job2 = run_job(studio, ws, engine_id, params, 2, row_times)
                sizes = [b for e, _, b in meter.events[ev0:] if e == engine_id]
                rows[engine_id] = {"job1_s": job1, "job2_s": job2, "load_s": meter.seconds(engine_id, ev0),
                                   "row_run_s": row_times, "loads": studio.cache.loads - loads0,
                                   "pipeline_mb": sizes[0] / 2**20 if sizes else 0.0}
            for engine_id in engines:
                loads0 = studio.cache.loads
                rows[engine_id]["job3_s"] = run_job(studio, ws, engine_id, JOB_PARAMS[size][engine_id], 3)
                rows[engine_id]["job3_loads"] = studio.cache.loads - loads0
    finally:
        studio.stop()
    return rows


def eviction_run(ws: Path, size: str, a: str, b: str, cap_gb: float, drop: bool) -> dict:
    """A fresh studio holding less than both: jobs on a, b, a; the last one reloads a."""
    from app.db import db

    studio, meter = start_studio(ws, model_cache={"max_size_gb": cap_gb})
    try:
        with db.connection_context():
            walls = []
            for i, e in enumerate((a, b)):
                cold(ws, e, drop)
                walls.append(run_job(studio, ws, e, JOB_PARAMS[size][e], i + 1))
            lingering = meter.alive(a)  # a's one load was evicted when b loaded; no gc.collect() yet
            ev0 = len(meter.events)
            cold(ws, a, drop)  # as it would be: evicted long ago, its files no longer in RAM either
            walls.append(run_job(studio, ws, a, JOB_PARAMS[size][a], 3))
            loads = {e: sum(1 for x, _, _ in meter.events if x == e) for e in (a, b)}
            return {"walls_s": walls, "loads": loads, "total_loads": studio.cache.loads, "lingering": lingering,
                    "reload_s": meter.seconds(a, ev0), "kept": [k[0] for k in studio.cache.keys()]}
    finally:
        studio.stop()


# --- report ------------------------------------------------------------------------------
def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"CUDA {torch.cuda.get_device_name(0)} (bf16)"
    return f"CPU, {torch.get_num_threads()} threads (fp32)"


def summarize(runs: list[dict], engines: list[str]) -> dict:
    out = {}
    for e in engines:
        med = {k: statistics.median(r[e][k] for r in runs) for k in ("job1_s", "job2_s", "job3_s", "load_s")}
        med["warm_cold"] = med["job2_s"] / med["job1_s"]
        med["saved_s"] = med["job1_s"] - med["job2_s"]
        med["loads"] = sorted({r[e]["loads"] for r in runs})
        med["job3_loads"] = sorted({r[e]["job3_loads"] for r in runs})
        med["pipeline_mb"] = runs[0][e]["pipeline_mb"]
        out[e] = med
    return out


def table(summary: dict, disk: dict, evictions: list[dict], args, cap_gb: float, pair: tuple[str, str]) -> str:
    head = (f"{'engine':16} {'weights':>8} {'load s':>7} {'job1 cold s':>11} {'job2 warm s':>11} "
            f"{'warm/cold':>9} {'job1-job2 s':>11} {'job3 after others s':>19} {'loads':>5}")
    files = "dropped from the OS page cache" if args.page_cache == "drop" else "in the OS page cache"
    title = (f"device: {device_name()}; size: {args.size}; runs: {args.runs} (medians); "
             f"cold = empty pipeline cache, weight files {files}")
    lines = [title, head, "-" * len(head)]
    for e, m in summary.items():
        loads = "/".join(map(str, m["loads"]))
        lines.append(f"{e:16} {disk[e]:6.1f}MB {m['load_s']:7.3f} {m['job1_s']:11.3f} {m['job2_s']:11.3f} "
                     f"{m['warm_cold']:9.2f} {m['saved_s']:11.3f} {m['job3_s']:19.3f} {loads:>5}")
    a, b = pair
    walls = [statistics.median(ev["walls_s"][i] for ev in evictions) for i in range(3)]
    reload_s = statistics.median(ev["reload_s"] for ev in evictions)
    loads = evictions[0]["loads"]
    lingering = sorted({n for ev in evictions for n in ev["lingering"]}) or "none"
    lines.append(f"\neviction: model_cache.max_size_gb={cap_gb:.4g} (one of {a} / {b} fits, not both); "
                 f"jobs {a}, {b}, {a}: {walls[0]:.3f} s, {walls[1]:.3f} s, {walls[2]:.3f} s; "
                 f"the third reloaded {a} in {reload_s:.3f} s; loads {a}={loads[a]} {b}={loads[b]} "
                 f"(expected 2 and 1); cache after: {evictions[0]['kept']}")
    lines.append(f"evicted {a} parts still in memory right after eviction (until the cyclic GC runs): {lingering}")
    return "\n".join(lines)


def checks(runs: list[dict], evictions: list[dict], engines: list[str], pair: tuple[str, str]) -> list[str]:
    bad = []
    for i, r in enumerate(runs, 1):
        for e in engines:
            if r[e]["loads"] != 1:
                bad.append(f"run {i}: {e} loaded {r[e]['loads']} times over two jobs (expected 1)")
            if r[e]["job3_loads"] != 0:
                bad.append(f"run {i}: {e} reloaded for job 3 under the default cache size")
    for i, ev in enumerate(evictions, 1):
        if ev["loads"] != {pair[0]: 2, pair[1]: 1}:
            bad.append(f"eviction run {i}: loads {ev['loads']} (expected {pair[0]}=2, {pair[1]}=1)")
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", choices=("tiny", "small"), default="tiny")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                        help=f"comma list, two or more of: {', '.join(DEFAULT_ENGINES)}")
    parser.add_argument("--page-cache", choices=("drop", "keep"), default="drop",
                        help="drop: evict the weight files from the OS page cache before each cold load "
                             "(a load reads the disk, as after a reboot); keep: loads read RAM")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(DEFAULT_ENGINES)
    if unknown or len(engines) < 2:
        parser.error(f"choose two or more of {', '.join(DEFAULT_ENGINES)}")
    logging.basicConfig(level=logging.WARNING)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for lib in (diffusers_logging, transformers_logging):
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="xianying-warm-") as d:
        tmp = Path(d)
        os.environ["XIANYING_SECRETS"] = str(tmp / "secrets.yaml")
        t0 = time.perf_counter()
        ws, disk = make_workspace(tmp, args.size, engines)
        sys.stderr.write(f"built {args.size} pipelines in {time.perf_counter() - t0:.1f} s\n")
        drop = args.page_cache == "drop" and drop_page_cache(ws / "models")
        args.page_cache = "drop" if drop else "keep"
        runs = [warm_run(ws, args.size, engines, drop) for _ in range(args.runs)]
        summary = summarize(runs, engines)
        pair = (engines[0], engines[1])
        sizes = [summary[e]["pipeline_mb"] / 1024 for e in pair]
        cap_gb = max(sizes) + min(sizes) / 2  # holds either one, never both
        evictions = [eviction_run(ws, args.size, *pair, cap_gb, drop) for _ in range(args.runs)]
    sys.stdout.write(table(summary, disk, evictions, args, cap_gb, pair) + "\n")
    bad = checks(runs, evictions, engines, pair)
    sys.stdout.write("checks: " + ("ok" if not bad else "FAILED\n  " + "\n  ".join(bad)) + "\n")
    if args.json:
        eviction = {"cap_gb": cap_gb, "pair": pair, "runs": evictions}
        args.json.write_text(json.dumps({"device": device_name(), "size": args.size, "page_cache": args.page_cache,
                                         "weights_mb": disk, "runs": runs, "median": summary, "eviction": eviction,
                                         "failed_checks": bad}, indent=2))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
