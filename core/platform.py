"""The one place where Windows and POSIX differ. Everything else calls these helpers instead of
checking ``os.name`` (``tools/posix_audit.py`` keeps it that way in CI).

    restrict_to_owner(path)          0600 on POSIX; a user-only ACL (icacls) on Windows
    replace_with_retry(src, dst)     os.replace that waits out a file another program holds open
    move_dir(src, dst)               folder rename with the same retries; falls back to copying
    check_path_length(path)          a clear ``PathTooLong`` instead of WinError 206 / 3
    make_console_safe()              Chinese text never crashes a GBK console or a redirected stdout
    no_window() / group_kwargs()     subprocess flags: no console flash; a process group to signal
    send_stop(proc) / kill_tree(proc)
    stop_signals()                   the signals that mean "stop" here (SIGBREAK on Windows, SIGHUP on POSIX)
    workspace_warnings(path)         a network drive or a cloud-synced folder (OneDrive) under the SQLite files
    sqlite_journal_mode(path)        WAL, or DELETE on a network drive (WAL needs shared memory)

Windows-only system calls (ctypes, winreg, icacls) sit behind small functions the tests replace,
so both branches run on Linux: tests set ``IS_WINDOWS``. Console-close, log-off and shut-down
handling lives in ``app.winstop``.
"""

from __future__ import annotations

import logging
import ntpath
import os
import shutil
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

from .errors import FileBusy, PathTooLong

log = logging.getLogger(__name__)

IS_WINDOWS = sys.platform == "win32"

CREATE_NO_WINDOW = 0x08000000
CREATE_NEW_PROCESS_GROUP = 0x00000200
CTRL_BREAK_EVENT = 1
# winerror codes a rename gets while another process has the file open
ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION = 5, 32, 33
BUSY_WINERRORS = (ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION)
MAX_PATH = 260  # including the terminating NUL: 259 characters usable
RETRY_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 2.0, 2.0, 3.0)  # ~10 s in all


# --- the private provider-key file --------------------------------------------------------------
def _icacls(argv: list[str]) -> subprocess.CompletedProcess:
    # output unread: it is in the console's OEM code page, which need not decode
    return subprocess.run(argv, capture_output=True, check=False, creationflags=no_window())


def windows_user() -> str:
    user = os.environ.get("USERNAME") or ""
    domain = os.environ.get("USERDOMAIN") or ""
    return f"{domain}\\{user}" if domain and user else user


def restrict_to_owner(path: Path, *, run=None) -> bool:
    """Make ``path`` readable and writable by its owner only. POSIX: mode 0600. Windows: an ACL
    with inheritance removed and one entry, full control for the current user (``icacls``).
    False when Windows refused (the file then keeps the ACL of its folder, which under the
    user's profile grants only the user, SYSTEM and Administrators)."""
    if not IS_WINDOWS:
        os.chmod(path, 0o600)  # posix-ok: the POSIX branch of the seam
        return True
    user = windows_user()
    if not user:
        log.warning("cannot restrict %s to the current user: USERNAME is not set", path)
        return False
    argv = ["icacls", str(path), "/inheritance:r", "/grant:r", f"{user}:F"]
    try:
        done = (run or _icacls)(argv)
    except OSError as exc:
        log.warning("icacls is unavailable (%s); %s keeps its folder's permissions", exc, path)
        return False
    if done.returncode != 0:
        log.warning("icacls could not restrict %s (exit %s); it keeps its folder's permissions",
                    path, done.returncode)
        return False
    return True


# --- renames that survive a file held open -------------------------------------------------------
def is_busy(exc: OSError) -> bool:
    """A refusal that goes away once the other program lets go (a player, the browser's preview,
    an antivirus scan or the search indexer reading a fresh file)."""
    winerror = getattr(exc, "winerror", None)
    if winerror is not None:
        return winerror in BUSY_WINERRORS
    return IS_WINDOWS and isinstance(exc, PermissionError)


def _busy(dst: Path, kept: Path, exc: OSError) -> FileBusy:
    return FileBusy(
        f"Another program has {dst} open (a video player, a browser tab or an antivirus scan?), so it "
        f"could not be replaced ({exc.strerror or exc}). Close it and try again; the new file is kept as {kept}.",
        f"{dst} 正被其他程序占用（视频播放器、浏览器或杀毒软件？），无法替换。请关闭后重试；新文件已保存为 {kept}。",
        path=str(dst), kept=str(kept))


def _retry(op, waits, sleep):
    waits = RETRY_WAITS if waits is None else waits
    sleep = sleep or time.sleep
    for wait in (*waits, None):
        try:
            return op()
        except OSError as exc:
            if wait is None or not is_busy(exc):
                raise
            sleep(wait)


def replace_with_retry(src, dst, *, waits=None, sleep=None, replace=None) -> Path:
    """``os.replace(src, dst)``, retried with backoff while Windows reports the destination (or the
    source) busy. When it never frees up, raises ``FileBusy`` and leaves ``src`` where it is."""
    op = replace or os.replace
    try:
        _retry(lambda: op(src, dst), waits, sleep)
    except OSError as exc:
        if is_busy(exc):
            raise _busy(Path(dst), Path(src), exc) from exc
        raise
    return Path(dst)


def move_dir(src, dst, *, waits=None, sleep=None, rename=None) -> Path:
    """Rename the folder ``src`` to ``dst`` (which must not exist), retrying while a file in it is
    held open. Windows cannot rename a folder with an open file, but can still read it: as a last
    resort the folder is copied and the original removed when it can be, so the output is never lost."""
    src, dst = Path(src), Path(dst)
    op = rename or os.rename
    try:
        _retry(lambda: op(src, dst), waits, sleep)
        return dst
    except OSError as exc:
        if not is_busy(exc):
            raise
        log.warning("%s is held open (%s); copying it to %s instead of renaming", src, exc, dst)
    shutil.copytree(src, dst, dirs_exist_ok=True)
    shutil.rmtree(src, ignore_errors=True)
    return dst


def remove_tree(path, *, waits=None, sleep=None) -> None:
    """``shutil.rmtree`` with the same retries (a file inside may be open for a moment)."""
    path = Path(path)
    if path.exists():
        _retry(lambda: shutil.rmtree(path), waits, sleep)


# --- long paths -----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def long_paths_enabled() -> bool:
    """Windows 10+ with ``LongPathsEnabled`` set (Python and PyInstaller's loader opt in)."""
    if not IS_WINDOWS:
        return True
    try:
        import winreg

        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Control\FileSystem") as key:
            return bool(winreg.QueryValueEx(key, "LongPathsEnabled")[0])
    except (ImportError, OSError):
        return False


def path_units(path) -> int:
    """Length as Windows counts it (UTF-16 units: a Chinese character is one, an emoji two)."""
    return len(str(path).encode("utf-16-le")) // 2


def path_limit() -> int | None:
    """Characters a path may have here, or None when there is no practical limit."""
    return None if (not IS_WINDOWS or long_paths_enabled()) else MAX_PATH - 1


def check_path_length(path) -> Path:
    """``path`` back, or ``PathTooLong`` when its full form passes Windows' limit here."""
    limit = path_limit()
    if limit is None:
        return Path(path)
    n = path_units(ntpath.abspath(path))  # a limit exists only on Windows: count its full form
    if n > limit:
        raise PathTooLong(
            f"The path {path} is {n} characters long; Windows allows {limit}. Move the workspace to a "
            "shorter folder (for example D:\\Xianying), use shorter project or file names, or turn on "
            "long paths (docs/windows.md).",
            f"路径 {path} 长 {n} 个字符，超过 Windows 的 {limit} 字符上限。请把工作区移到较短的文件夹"
            "（如 D:\\Xianying）、缩短项目或文件名，或开启长路径支持（见 docs/windows.md）。",
            path=str(path), length=n, limit=limit)
    return Path(path)


# --- console and log encoding ------------------------------------------------------------------
def make_console_safe(streams=None) -> None:
    """Chinese in prints and logs never raises UnicodeEncodeError. A console keeps its encoding
    (Windows' console is UTF-16 anyway) and escapes what it cannot show; redirected output (a
    file or a pipe in cp936 / cp1252) becomes UTF-8. ``PYTHONIOENCODING`` wins."""
    if os.environ.get("PYTHONIOENCODING"):
        return
    for stream in streams if streams is not None else (sys.stdout, sys.stderr):
        if stream is None or not hasattr(stream, "reconfigure"):
            continue
        encoding = (getattr(stream, "encoding", "") or "").lower().replace("-", "").replace("_", "")
        if encoding in ("utf8", "utf8sig"):
            continue
        try:
            tty = stream.isatty()
        except (OSError, ValueError):
            tty = False
        stream.flush()
        if tty:
            stream.reconfigure(errors="backslashreplace")
        else:
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")


# --- subprocesses ---------------------------------------------------------------------------------
def no_window() -> int:
    """``creationflags`` for a helper process (ffmpeg, icacls): no console window flashes up."""
    return CREATE_NO_WINDOW if IS_WINDOWS else 0


def lower_priority() -> bool:
    """This process yields the CPU to the others (the studio's server first): ``nice`` 10 on POSIX,
    below-normal priority on Windows. False where the system refused."""
    try:
        if IS_WINDOWS:
            import ctypes

            below_normal = 0x4000  # BELOW_NORMAL_PRIORITY_CLASS
            kernel32 = ctypes.windll.kernel32
            return bool(kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), below_normal))
        os.nice(10)
        return True
    except (OSError, AttributeError):
        return False


def group_kwargs() -> dict:
    """Popen arguments that put a child in its own process group, so it can be stopped (and its
    whole tree killed) on its own: ``start_new_session`` on POSIX, a new group on Windows."""
    if IS_WINDOWS:
        return {"creationflags": CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}  # posix-ok: the POSIX branch of the seam


def send_stop(proc) -> None:
    """Ask a child started with ``group_kwargs()`` to stop cleanly: Ctrl-Break on Windows
    (there is no SIGTERM to send there), SIGTERM on POSIX."""
    if proc.poll() is not None:
        return
    proc.send_signal(CTRL_BREAK_EVENT if IS_WINDOWS else signal.SIGTERM)


def _taskkill(pid: int) -> None:
    subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True, check=False,
                   creationflags=no_window())


def kill_tree(proc, *, taskkill=None, killpg=None) -> None:
    """Kill ``proc`` and every process it started: ``taskkill /T`` on Windows, the process group
    on POSIX (when the child leads its own, see ``group_kwargs``)."""
    if proc.poll() is None:
        if IS_WINDOWS:
            (taskkill or _taskkill)(proc.pid)
        else:
            try:
                if os.getpgid(proc.pid) == proc.pid:  # posix-ok: the POSIX branch of the seam
                    (killpg or os.killpg)(proc.pid, signal.SIGKILL)  # posix-ok: the POSIX branch
                else:
                    proc.kill()
            except ProcessLookupError:
                pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def stop_signals() -> tuple[int, ...]:
    """Signals that mean "stop now, cleanly": SIGINT and SIGTERM everywhere; SIGBREAK (Ctrl-Break)
    on Windows, SIGHUP (the terminal closed) on POSIX unless it is ignored (``nohup``)."""
    extra = getattr(signal, "SIGBREAK" if IS_WINDOWS else "SIGHUP", None)
    if extra is not None and not IS_WINDOWS and signal.getsignal(extra) == signal.SIG_IGN:
        extra = None
    return (signal.SIGINT, signal.SIGTERM) + ((extra,) if extra is not None else ())


# --- where the SQLite files live -----------------------------------------------------------------
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "9p", "fuse.sshfs", "sshfs", "davfs", "fuse.rclone",
              "fuse.s3fs", "ncpfs", "glusterfs", "ceph", "lustre")
SYNC_NAMES = ("onedrive", "dropbox", "google drive", "googledrive", "icloud drive", "iclouddrive",
              "nutstore", "坚果云", "baidusyncdisk", "百度网盘")
DRIVE_REMOTE = 4


def _windows_drive_type(root: str) -> int:
    import ctypes

    return int(ctypes.windll.kernel32.GetDriveTypeW(root))


def _posix_mounts() -> str:
    try:
        return Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def is_network_path(path, *, drive_type=None, mounts=None) -> bool:
    """A network share: a UNC path or mapped network drive (Windows); an NFS/SMB/sshfs mount (POSIX)."""
    text = str(path)
    if IS_WINDOWS:
        if text.startswith(("\\\\?\\UNC\\", "//")) or (text.startswith("\\\\") and not text.startswith("\\\\?\\")):
            return True
        drive = ntpath.splitdrive(text.removeprefix("\\\\?\\"))[0]
        if not drive:
            return False
        try:
            return (drive_type or _windows_drive_type)(drive + "\\") == DRIVE_REMOTE
        except (OSError, AttributeError, ValueError):
            return False
    best, fstype = "", ""
    target = os.path.abspath(text).rstrip("/") + "/"
    for line in (mounts if mounts is not None else _posix_mounts()).splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ").rstrip("/") + "/"
        if target.startswith(point) and len(point) > len(best):
            best, fstype = point, parts[2]
    return fstype.lower() in NETWORK_FS


def cloud_sync_folder(path, *, environ=None) -> str | None:
    """The sync service whose folder holds ``path`` (OneDrive, Dropbox, ...), or None."""
    env = os.environ if environ is None else environ
    text = str(path)
    folded = text.replace("\\", "/").lower().rstrip("/") + "/"
    for var in ("OneDrive", "OneDriveConsumer", "OneDriveCommercial"):
        root = env.get(var)
        if root and folded.startswith(root.replace("\\", "/").lower().rstrip("/") + "/"):
            return "OneDrive"
    for part in folded.split("/"):
        for name in SYNC_NAMES:
            if part == name or (name == "onedrive" and part.startswith("onedrive")):
                return "OneDrive" if name == "onedrive" else part
    return None


def workspace_warnings(workspace, *, environ=None, drive_type=None, mounts=None) -> list[tuple[str, str]]:
    """(English, Chinese) warnings about where the workspace is: SQLite's write-ahead log is safe
    only on a local disk, a sync client copying studio.db mid-write corrupts it, and a deep
    folder leaves generated paths no room under Windows' limit."""
    out = []
    if is_network_path(workspace, drive_type=drive_type, mounts=mounts):
        out.append((f"The workspace {workspace} is on a network drive. Its database will use a rollback "
                    "journal instead of WAL, which is slower; keep one studio per workspace, or move it to a "
                    "local disk (--workspace).",
                    f"工作区 {workspace} 位于网络驱动器上。数据库将改用回滚日志（比 WAL 慢）；同一工作区只运行一个"
                    "工作室，或用 --workspace 移到本地磁盘。"))
    service = cloud_sync_folder(workspace, environ=environ)
    if service:
        out.append((f"The workspace {workspace} is inside a {service} folder. Syncing studio.db while the studio "
                    "writes it can corrupt it: move the workspace out (--workspace D:\\Xianying), or pause "
                    f"syncing while the studio runs (docs/windows.md).",
                    f"工作区 {workspace} 位于 {service} 同步文件夹内。工作室写入 studio.db 时同步可能损坏数据库："
                    "请把工作区移出（--workspace D:\\Xianying），或在工作室运行时暂停同步（见 docs/windows.md）。"))
    limit = path_limit()
    if limit is not None and path_units(Path(workspace)) + LONGEST_GENERATED > limit:
        out.append((f"The workspace path {workspace} is long: files the studio creates under it may pass "
                    f"Windows' {limit}-character limit. Use a shorter folder or turn on long paths (docs/windows.md).",
                    f"工作区路径 {workspace} 过长：工作室生成的文件可能超过 Windows 的 {limit} 字符上限。"
                    "请使用较短的文件夹，或开启长路径支持（见 docs/windows.md）。"))
    return out


# projects/<id, 64>/renders/<episode name, 64>_v<N>.json: the longest path the studio makes itself
LONGEST_GENERATED = len("/projects/") + 64 + len("/renders/") + 64 + len("_v9999.json")


def sqlite_journal_mode(path, **probes) -> str:
    """``wal`` on a local disk; ``delete`` on a network drive, where WAL's shared memory is unsafe."""
    try:
        return "delete" if is_network_path(path, **probes) else "wal"
    except Exception:  # noqa: BLE001 (a probe that fails must not stop the studio)
        return "wal"
