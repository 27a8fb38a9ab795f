"""What a model download needs besides its manager (``download.py``): the hub's file list and
its filter, part files and checksums, and every failure explained in words (English + 中文).
Nothing heavy at import: huggingface_hub and httpx2 are imported inside the functions."""

from __future__ import annotations

import errno
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.errors import AppError, EngineError, NotAvailable

MIRROR_EXAMPLE = "https://hf-mirror.com"
PARTS_DIR = Path(".cache") / "xianying"  # <weights folder>/.cache/xianying/<path>.<etag>.part


@dataclass
class RemoteFile:
    path: str
    size: int
    oid: str  # git blob id
    sha256: str | None  # LFS files

    @property
    def etag(self) -> str:
        return self.sha256 or self.oid


def select_files(entries: list[RemoteFile], allow, ignore, markers) -> list[RemoteFile]:
    """The files matching ``allow`` and not ``ignore``; a ``.bin`` / ``.pt`` beside a
    ``.safetensors`` in the same folder is skipped (the loaders prefer safetensors); markers last."""
    from huggingface_hub.utils import filter_repo_objects

    keep = set(filter_repo_objects([e.path for e in entries], allow_patterns=list(allow),
                                   ignore_patterns=list(ignore)))
    with_safetensors = {p.rpartition("/")[0] for p in keep if p.endswith(".safetensors")}
    chosen = [e for e in entries if e.path in keep
              and not (e.path.endswith((".bin", ".pt")) and e.path.rpartition("/")[0] in with_safetensors)]
    return sorted(chosen, key=lambda e: (e.path in markers, e.path))


def part_path(target: Path, f: RemoteFile) -> Path:
    return target / PARTS_DIR / f"{f.path}.{f.etag[:16]}.part"


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def part_size(target: Path, f: RemoteFile) -> int:
    return min(size_of(part_path(target, f)), f.size)


def complete(dest: Path, f: RemoteFile) -> bool:
    return dest.is_file() and dest.stat().st_size == f.size


def digest(path: Path, f: RemoteFile) -> str:
    """sha256 for LFS files; for the others the git blob id (sha1 of ``blob <size>\\0`` + bytes)."""
    h = hashlib.sha256() if f.sha256 else hashlib.sha1(f"blob {f.size}\0".encode())
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def tidy(target: Path) -> None:
    parts = target / PARTS_DIR
    if parts.is_dir() and not any(p.is_file() for p in parts.rglob("*")):
        shutil.rmtree(parts, ignore_errors=True)
        if not any((target / ".cache").iterdir()):
            (target / ".cache").rmdir()


def existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def transient(exc: BaseException) -> bool:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        return exc.response is not None and exc.response.status_code in (408, 429, 500, 502, 503, 504)
    return isinstance(exc, httpx2.TransportError)


def gated_error(repo: str, endpoint: str, folder: Path) -> AppError:
    page = f"{endpoint}/{repo}"
    return NotAvailable(
        f"{repo} is gated: sign in at {page}, accept its licence, create a read token "
        "(https://huggingface.co/settings/tokens) and set HF_TOKEN (environment or the studio's secrets file), "
        f"then Download again. Or copy the model folder to {folder} by hand.",
        f"{repo} 需要授权：请登录 {page} 并同意其许可协议，创建只读令牌（https://huggingface.co/settings/tokens）"
        f"并设置 HF_TOKEN（环境变量或工作室密钥文件），然后重新下载；或手动把模型文件夹复制到 {folder}。",
        reason="gated")


def disk_full_error(folder: Path, short: int) -> AppError:
    gb = max(short / 2**30, 0.01)
    return EngineError(
        f"Not enough disk space in {folder}: {gb:.2f} GB more needed. Free some space, or set models.<engine> in "
        "config.yaml to a folder on a bigger disk. The partial files are kept.",
        f"{folder} 所在磁盘空间不足，还需 {gb:.2f} GB。请清理空间，或在 config.yaml 的 models.<引擎> 中指定更大磁盘上的"
        "文件夹。已下载的部分会保留。", reason="disk_full")


def explain(exc: BaseException, *, repo: str, endpoint: str, folder: Path) -> AppError:
    """One hub / network / disk failure as a bilingual message that says what to do (no token in it)."""
    import httpx2
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, GatedRepoError):
        return gated_error(repo, endpoint, folder)
    if isinstance(exc, RepositoryNotFoundError) or status == 404:  # the hub says 401 for unknown repos too
        return NotAvailable(f"{repo} was not found on {endpoint}. If this is a mirror, it may not carry it: "
                            f"clear hf_endpoint, or copy the model folder to {folder} by hand.",
                            f"在 {endpoint} 上找不到 {repo}。若这是镜像站，可能没有该模型：请清空 hf_endpoint，"
                            f"或手动把模型文件夹复制到 {folder}。", reason="not_found")
    if status in (401, 403):
        return gated_error(repo, endpoint, folder)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return disk_full_error(folder, 0)
    if isinstance(exc, (httpx2.TransportError, OfflineModeIsEnabled)) or (
            isinstance(exc, HfHubHTTPError) and status is not None and status >= 500):
        return NotAvailable(
            f"Cannot reach {endpoint} ({type(exc).__name__}). Copy the model folder ({repo}, diffusers format) "
            f"to {folder} by hand, or set hf_endpoint in config.yaml to a mirror such as {MIRROR_EXAMPLE}. "
            "The partial files are kept: Download again resumes.",
            f"无法连接 {endpoint}（{type(exc).__name__}）。请手动把模型文件夹（{repo}，diffusers 格式）复制到 {folder}，"
            f"或在 config.yaml 中把 hf_endpoint 设为镜像站（例如 {MIRROR_EXAMPLE}）。已下载的部分会保留，再次下载即可继续。",
            reason="unreachable")
    if isinstance(exc, HfHubHTTPError):
        return NotAvailable(f"The hub at {endpoint} refused {repo} (HTTP {status}).",
                            f"{endpoint} 拒绝了 {repo} 的请求（HTTP {status}）。", reason="hub_error")
    return EngineError(f"Download of {repo} failed ({type(exc).__name__}); see the studio log.",
                       f"{repo} 下载失败（{type(exc).__name__}），请查看工作室日志。", reason="error")
