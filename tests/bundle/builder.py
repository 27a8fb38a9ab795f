"""Build the desktop bundle once per source state, for the smoke test and the benchmark.

``build_bundle(variant)`` runs ``pyinstaller build.spec`` with ``XIANYING_BUNDLE=<variant>``
and keeps the result in ``build/bundle-cache/<variant>-<key>/``, where the key hashes every
file the bundle is made from (build.spec, packaging/, launch.py, app/, engines/, profiles/),
the installed distributions and the Python version. An unchanged tree reuses the bundle; a
clean checkout builds it. ``XIANYING_BUNDLE_DIR`` points at a bundle built elsewhere (e.g. an
earlier CI step) and skips building altogether.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("build.spec", "launch.py", "packaging", "app", "engines", "profiles")
CACHE = ROOT / "build" / "bundle-cache"
EXE_NAME = "xianying.exe" if sys.platform == "win32" else "xianying"


def _files() -> list[Path]:
    out: list[Path] = []
    for name in SOURCES:
        p = ROOT / name
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += [f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                    and f.suffix not in (".pyc", ".pyo")]
    return sorted(out)


def source_key(variant: str) -> str:
    h = hashlib.sha256(f"{variant}\n{sys.version}\n{sys.platform}\n".encode())
    for f in _files():
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    h.update("\n".join(dists).encode())
    return h.hexdigest()[:20]


def exe_in(bundle_dir: Path) -> Path:
    return bundle_dir / EXE_NAME


def build_bundle(variant: str = "lite", *, force: bool = False, timeout: float = 1500) -> tuple[Path, float | None]:
    """(bundle folder, build seconds or None when reused). Raises RuntimeError on failure."""
    given = os.environ.get("XIANYING_BUNDLE_DIR")
    if given and not force:
        return Path(given).resolve(), None
    key = f"{variant}-{source_key(variant)}"
    final = CACHE / key
    if exe_in(final).exists() and not force:
        return final, None
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=CACHE))
    env = {**os.environ, "XIANYING_BUNDLE": variant}
    env.pop("XIANYING_BUNDLE_WINDOWED", None)
    cmd = [sys.executable, "-m", "PyInstaller", str(ROOT / "build.spec"), "--noconfirm", "--log-level", "WARN",
           "--distpath", str(tmp / "dist"), "--workpath", str(tmp / "work")]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        seconds = time.perf_counter() - t0
        built = tmp / "dist" / f"xianying-{variant}"
        if proc.returncode != 0 or not exe_in(built).exists():
            raise RuntimeError(f"PyInstaller failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(built, final)
        except OSError:  # another process finished the same build first
            if not exe_in(final).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(variant, keep=final)
    return final, seconds


def _prune(variant: str, keep: Path) -> None:
    """Older bundles of this variant are dead weight (hundreds of MB each)."""
    for d in CACHE.glob(f"{variant}-*"):
        if d != keep and d.is_dir():
            shutil.rmtree(d, ignore_errors=True)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "lite"
    folder, secs = build_bundle(which, force="--force" in sys.argv)
    took = f"built in {secs:.0f} s" if secs is not None else "reused"
    print(f"{exe_in(folder)}  ({took}, {folder_size(folder) / 2**20:.0f} MiB)")
