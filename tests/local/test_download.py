"""Model downloads (engines/local/download.py) against a loopback fake hub (fake_hub.py): the real
huggingface_hub client and HTTP session, real files, real threads; nothing in the code under test
is mocked."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from core.errors import ValidationError
from tests.conftest import wait_for
from tests.local.conftest import TinyFaceAnalyzer, make_engine
from tests.local.fake_hub import FakeHub

WAN = "wan2.1-t2v-1.3b"
WAN_REPO = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
BIG = "transformer/diffusion_pytorch_model.safetensors"
# files a real repo carries beside what the diffusers loader needs: none may be fetched
DECOYS = {
    "README.md": b"# model card",
    "assets/logo.png": b"\x89PNG" + b"0" * 500,
    "transformer/diffusion_pytorch_model.fp16.safetensors": b"h" * 3000,
    "text_encoder/pytorch_model.bin": b"t" * 3000,  # beside model.safetensors
    "text_encoder/model.onnx": b"o" * 3000,
    "unet/openvino_model.xml": b"<xml/>",
    "vae/flax_model.msgpack": b"m" * 300,
    "Wan2.1_VAE.pth": b"p" * 300,
}


@pytest.fixture
def online(tmp_path, monkeypatch):
    """The hub client as on a user's machine that is online (the suite runs with HF_HUB_OFFLINE=1)."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for name in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_DISABLE_XET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # read once at import: the env alone is too late


@pytest.fixture
def hub(online):
    with FakeHub() as h:
        yield h


def studio_parts(workspace: Path, endpoint: str, secrets=None, **kw):
    from app.settings import load_settings
    from engines.local.download import ModelDownloads
    from engines.registry import build_engines

    settings = load_settings(workspace, hf_endpoint=endpoint)
    settings.ensure_dirs()
    engines = build_engines(settings, secrets)
    kw = {"chunk_bytes": 8192, "retry_wait": 0.01, **kw}
    return settings, engines, ModelDownloads(settings, engines, secrets, **kw)


def status_when(downloads, pred, engine: str = WAN) -> dict:
    """The first status row where ``pred`` holds (or the last one, if the download ended first)."""

    def check():
        row = downloads.status()[engine]
        return row if pred(row) or row["state"] != "downloading" else None

    return wait_for(check)


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_download_shows_progress_and_makes_the_engine_available(workspace, hub, tiny_wan_dir):
    hub.add_folder(WAN_REPO, tiny_wan_dir, DECOYS)
    _, engines, downloads = studio_parts(workspace, hub.url)
    assert engines[WAN].available()[0] is False
    gate = hub.hold(BIG, after=40_000)

    wanted = tree_bytes(tiny_wan_dir)
    before = sum(len(b) for p, b in wanted.items() if p < BIG and p != "model_index.json")  # fetched in path order

    downloads.start(WAN)
    row = status_when(downloads, lambda r: r["current"] == BIG and r["bytes_done"] >= before + 32_768)
    assert row["state"] == "downloading", row
    assert 0 < row["bytes_done"] < row["bytes_total"] and row["files_done"] < row["files_total"]
    assert not engines[WAN].available()[0]  # model_index.json comes last: a half folder never counts
    gate.set()
    row = downloads.wait(WAN, 30)

    assert row["state"] == "done", row
    assert row["bytes_done"] == row["bytes_total"] == sum(len(b) for b in wanted.values())
    assert row["files_done"] == row["files_total"] == len(wanted)
    folder = workspace / "models" / WAN
    assert tree_bytes(folder) == wanted  # nothing else: decoys and part files are gone
    fetched = {h.path for h in hub.hits(method="GET")}
    assert not any(path.endswith(decoy) for decoy in DECOYS for path in fetched)
    ok, reason = engines[WAN].available()  # no restart, same engine object
    assert ok and engines[WAN].weights().source == "workspace", reason
    assert not any(h.auth for h in hub.log)  # no token anywhere, none sent to a loopback "mirror"


def test_network_drop_resumes_with_a_range_request(workspace, hub):
    data = os.urandom(200_000)
    hub.add_repo(WAN_REPO, {"model_index.json": b"{}", BIG: data, "transformer/config.json": b"{}"})
    hub.cut_once(BIG, after=50_000)
    _, _, downloads = studio_parts(workspace, hub.url)

    downloads.start(WAN)
    assert downloads.wait(WAN, 30)["state"] == "done"

    gets = hub.file_hits(WAN_REPO, BIG)
    assert [h.status for h in gets] == [200, 206]
    assert gets[0].range is None and gets[0].sent == 50_000
    resumed_at = int(gets[1].range.removeprefix("bytes=").rstrip("-"))
    assert 40_000 < resumed_at <= 50_000  # whole 8 KiB chunks written before the drop
    assert gets[1].sent == len(data) - resumed_at  # no second full transfer
    assert (workspace / "models" / WAN / BIG).read_bytes() == data


def test_cancel_keeps_the_part_and_a_later_start_continues(workspace, hub):
    data = os.urandom(300_000)
    hub.add_repo(WAN_REPO, {"model_index.json": b"{}", BIG: data})
    gate = hub.hold(BIG, after=100_000)
    _, engines, downloads = studio_parts(workspace, hub.url)

    downloads.start(WAN)
    assert status_when(downloads, lambda r: r["bytes_done"] >= 90_000)["state"] == "downloading"
    downloads.cancel(WAN)
    gate.set()
    row = downloads.wait(WAN, 30)
    assert row["state"] == "cancelled" and "resume" in row["message_en"] and "继续" in row["message_zh"]
    folder = workspace / "models" / WAN
    parts = list((folder / ".cache").rglob("*.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < len(data)
    kept = parts[0].stat().st_size
    assert not (folder / "model_index.json").exists() and not engines[WAN].available()[0]

    _, _, again = studio_parts(workspace, hub.url)  # as after a restart: a new manager, same folder
    assert again.status()[WAN]["state"] == "idle"
    again.start(WAN)
    row = again.wait(WAN, 30)
    assert row["state"] == "done" and row["bytes_done"] == row["bytes_total"] == len(data) + 2
    last = hub.file_hits(WAN_REPO, BIG)[-1]
    assert last.range == f"bytes={kept}-" and last.status == 206 and last.sent == len(data) - kept
    assert (folder / BIG).read_bytes() == data and not (folder / ".cache").exists()


def test_cancel_on_a_stalled_connection_does_not_wait_for_the_read_timeout(workspace, hub):
    data = os.urandom(200_000)
    hub.add_repo(WAN_REPO, {"model_index.json": b"{}", BIG: data})
    gate = hub.hold(BIG, after=50_000)  # the server stops sending mid-file and keeps the socket open
    _, _, downloads = studio_parts(workspace, hub.url, timeout=120)
    try:
        downloads.start(WAN)
        assert status_when(downloads, lambda r: r["bytes_done"] >= 40_000)["state"] == "downloading"
        downloads.cancel(WAN)
        row = downloads.wait(WAN, 20)  # far below the 120 s read timeout
        assert row["state"] == "cancelled", row
        part = next((workspace / "models" / WAN / ".cache").rglob("*.part"))
        assert 40_000 <= part.stat().st_size <= 50_000
    finally:
        gate.set()


def test_stopping_the_studio_stops_downloads_and_keeps_their_parts(workspace, hub):
    data = os.urandom(200_000)
    hub.add_repo(WAN_REPO, {"model_index.json": b"{}", BIG: data})
    gate = hub.hold(BIG, after=50_000)
    _, _, downloads = studio_parts(workspace, hub.url, timeout=120)
    try:
        downloads.start(WAN)
        status_when(downloads, lambda r: r["bytes_done"] >= 40_000)
        downloads.stop(timeout=20)
        assert not downloads.running() and downloads.status()[WAN]["state"] == "cancelled"
        assert next((workspace / "models" / WAN / ".cache").rglob("*.part")).stat().st_size >= 40_000
    finally:
        gate.set()


def test_a_gated_repo_says_how_to_get_access_and_the_token_stays_secret(workspace, hub, tmp_path, caplog):
    from app.secrets import SecretStore

    hub.add_repo(WAN_REPO, {"model_index.json": b"{}", BIG: os.urandom(20_000)}, gated=True, tokens={"hf_granted"})
    secrets = SecretStore(tmp_path / "secrets.yaml")

    _, _, downloads = studio_parts(workspace, hub.url, secrets)
    downloads.start(WAN)
    row = downloads.wait(WAN, 30)
    assert row["state"] == "failed" and row["error_code"] == "gated"
    assert "HF_TOKEN" in row["message_en"] and "licence" in row["message_en"] and f"{hub.url}/{WAN_REPO}" in row[
        "message_en"]
    assert "HF_TOKEN" in row["message_zh"] and "许可" in row["message_zh"]
    assert not hub.hits("/resolve/", method="GET")

    secrets.set("HF_TOKEN", "hf_wrong_secret_1")  # a token that was not granted: the hub answers 403
    downloads.start(WAN)
    row = downloads.wait(WAN, 30)
    assert row["error_code"] == "gated" and "hf_wrong_secret_1" not in str(row)

    secrets.set("HF_TOKEN", "hf_granted")
    with caplog.at_level("DEBUG"):
        downloads.start(WAN)
        row = downloads.wait(WAN, 30)
    assert row["state"] == "done"
    assert "hf_granted" not in caplog.text and "hf_wrong_secret_1" not in caplog.text and "hf_granted" not in str(row)
    assert all(h.auth for h in hub.hits("/resolve/", method="GET"))
    assert not any(h.auth for h in hub.hits("/cdn/"))  # the token never leaves the hub for the CDN


def test_an_unreachable_hub_suggests_a_mirror_or_a_manual_copy(workspace, online):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, _, downloads = studio_parts(workspace, f"http://127.0.0.1:{port}")
    downloads.start(WAN)
    row = downloads.wait(WAN, 30)
    assert row["state"] == "failed" and row["error_code"] == "unreachable"
    folder = str(workspace / "models" / WAN)
    assert "hf_endpoint" in row["message_en"] and "hf-mirror.com" in row["message_en"] and folder in row["message_en"]
    assert "镜像" in row["message_zh"] and folder in row["message_zh"]


def test_not_enough_disk_space_is_said_before_downloading(workspace, hub):
    repo = hub.add_repo(WAN_REPO, {"model_index.json": b"{}", BIG: b"x" * 1000})
    repo.files[BIG].listed_size = 1 << 60  # an exabyte: more than any test disk
    _, _, downloads = studio_parts(workspace, hub.url)
    downloads.start(WAN)
    row = downloads.wait(WAN, 30)
    assert row["state"] == "failed" and row["error_code"] == "disk_full"
    assert "disk" in row["message_en"] and "磁盘" in row["message_zh"]
    assert not hub.hits("/resolve/", method="GET")


def test_offline_mode_is_explained(workspace, hub, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    _, _, downloads = studio_parts(workspace, hub.url)
    downloads.start(WAN)
    row = downloads.wait(WAN, 30)
    assert row["error_code"] == "offline" and "HF_HUB_OFFLINE" in row["message_en"] and not hub.log


def test_only_engines_with_a_hub_model_can_download(workspace, hub):
    _, engines, downloads = studio_parts(workspace, hub.url)
    cloud = next(e.id for e in engines.values() if e.kind == "cloud")
    for engine_id in ("no-such-engine", cloud):
        with pytest.raises(ValidationError):
            downloads.start(engine_id)
    assert set(downloads.targets()) == {e.id for e in engines.values() if e.kind == "local"}
    assert not hub.log


def test_one_download_per_engine_at_a_time(workspace, hub):
    hub.add_repo(WAN_REPO, {"model_index.json": b"{}", BIG: os.urandom(50_000)})
    gate = hub.hold(BIG, after=20_000)
    _, _, downloads = studio_parts(workspace, hub.url)
    downloads.start(WAN)
    assert status_when(downloads, lambda r: r["bytes_done"] > 0)["state"] == "downloading"
    assert downloads.start(WAN)["state"] == "downloading" and downloads.running()
    gate.set()
    assert downloads.wait(WAN, 30)["state"] == "done"
    assert len(hub.hits("/revision/main")) == 1 and len(hub.file_hits(WAN_REPO, BIG)) == 1


def test_instantid_fetches_its_files_and_the_missing_sdxl_base(workspace, hub, tiny_sdxl_dir, tiny_instantid_dir):
    hub.add_folder("InstantX/InstantID", tiny_instantid_dir, {"README.md": b"#", "examples/0.png": b"png" * 99})
    hub.add_folder("stabilityai/stable-diffusion-xl-base-1.0", tiny_sdxl_dir,
                   {"sd_xl_base_1.0.safetensors": b"s" * 999, "vae_1_0/config.json": b"{}"})
    settings, _, downloads = studio_parts(workspace, hub.url)
    engine = make_engine(settings, "sdxl-instantid")
    assert isinstance(engine.face_analyzer, TinyFaceAnalyzer) and not engine.available()[0]

    downloads.start("sdxl-instantid")
    row = downloads.wait("sdxl-instantid", 60)
    assert row["state"] == "done", row
    models = workspace / "models"
    assert tree_bytes(models / "sdxl-instantid") == tree_bytes(tiny_instantid_dir)
    assert tree_bytes(models / "sdxl") == tree_bytes(tiny_sdxl_dir)
    assert engine.available()[0], engine.available()

    before = len(hub.log)
    downloads.start("sdxl")  # already complete: listed again, nothing fetched
    row = downloads.wait("sdxl", 30)
    assert row["state"] == "done" and row["files_done"] == row["files_total"]
    assert not [h for h in hub.log[before:] if "/resolve/" in h.path or "/cdn/" in h.path]


def test_the_pattern_table_picks_what_the_loaders_need():
    from engines.local.download import PLANS
    from engines.local.hub_files import RemoteFile

    listing = ["model_index.json", "sd_xl_base_1.0.safetensors", "sd_xl_offset_example-lora_1.0.safetensors",
               "vae_1_0/diffusion_pytorch_model.safetensors", "LICENSE.md", "01.png"]
    for comp, weights in (("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"),
                          ("text_encoder", "model"), ("text_encoder_2", "model")):
        listing += [f"{comp}/config.json", f"{comp}/{weights}.safetensors", f"{comp}/{weights}.fp16.safetensors",
                    f"{comp}/flax_model.msgpack", f"{comp}/model.onnx", f"{comp}/openvino_model.bin",
                    f"{comp}/openvino_model.xml"]
    listing += ["unet/model.onnx_data", "text_encoder_2/pytorch_model.bin", "scheduler/scheduler_config.json",
                "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer_2/vocab.json"]
    entries = [RemoteFile(p, 1, "0" * 40, None) for p in listing]
    chosen = [f.path for f in PLANS["sdxl"][0].select(entries)]
    assert chosen[-1] == "model_index.json"
    assert sorted(chosen) == sorted([
        "model_index.json", "scheduler/scheduler_config.json", "tokenizer/merges.txt", "tokenizer/vocab.json",
        "tokenizer_2/vocab.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
        "text_encoder/model.safetensors", "text_encoder_2/config.json", "text_encoder_2/model.safetensors"])

    instantid = [RemoteFile(p, 1, "0" * 40, None) for p in (
        "ControlNetModel/config.json", "ControlNetModel/diffusion_pytorch_model.safetensors", "ip-adapter.bin",
        "README.md", "examples/musk_resize.jpeg", "gradio_demo/app.py")]
    chosen = [f.path for f in PLANS["sdxl-instantid"][0].select(instantid)]
    assert chosen == ["ControlNetModel/diffusion_pytorch_model.safetensors", "ip-adapter.bin",
                      "ControlNetModel/config.json"]  # ip-adapter.bin has no safetensors twin: kept


def test_the_fake_hub_speaks_the_protocol_of_huggingface_hub_itself(hub, tmp_path):
    """snapshot_download (HEAD metadata, redirect to the CDN, paged tree listing) works against the fake."""
    import huggingface_hub

    hub.page_size = 2
    files = {"model_index.json": b"{}", "unet/config.json": b"{}", BIG: os.urandom(30_000), "a/b.txt": b"ab"}
    hub.add_repo("org/tiny", files)
    out = huggingface_hub.snapshot_download("org/tiny", local_dir=tmp_path / "snap", endpoint=hub.url, token=False,
                                            cache_dir=tmp_path / "cache")
    assert {k: v for k, v in tree_bytes(Path(out)).items() if not k.startswith(".cache/")} == files
    assert len(hub.hits("/tree/" + hub.repos["org/tiny"].sha)) == 4  # 4 files + 3 folders, 2 per page


def test_progress_line_reads_like_the_spec():
    from app.ui.settings_view import download_line

    row = {"engine": "sdxl", "state": "downloading", "bytes_done": int(1.2 * 2**30), "bytes_total": int(6.9 * 2**30),
           "files_done": 2, "files_total": 12, "message_en": "", "message_zh": ""}
    assert download_line(row, "en").endswith(" ⏳ `sdxl` 17% · 1.2/6.9 GB · file 3/12")
    assert download_line(row, "zh").endswith(" ⏳ `sdxl` 17% · 1.2/6.9 GB · 文件 3/12")
    assert download_line(row, "en").startswith("`███░░░░░░░░░░░░░░░░░` ")
    done = {**row, "state": "failed", "message_en": "Cannot reach x", "message_zh": "无法连接 x"}
    assert download_line(done, "zh") == "⚠ `sdxl` 无法连接 x"
    assert download_line({**row, "state": "idle"}, "en") == ""
