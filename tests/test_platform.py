"""core.platform, both branches on Linux: tests set ``platform.IS_WINDOWS`` and replace the few
Windows system calls (icacls, taskkill, GetDriveType, the registry) with recorders."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core import platform
from core.errors import AppError, FileBusy, PathTooLong
from app.secrets import SecretStore

KEY = "sk-platform-test-51c0ffee9a7d"


@pytest.fixture
def windows(monkeypatch):
    monkeypatch.setattr(platform, "IS_WINDOWS", True)
    monkeypatch.setattr(platform, "long_paths_enabled", lambda: False)
    return monkeypatch


@pytest.fixture
def posix(monkeypatch):
    monkeypatch.setattr(platform, "IS_WINDOWS", False)
    return monkeypatch


@pytest.fixture
def fast(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(platform, "RETRY_WAITS", (0.05, 0.1, 0.2))
    monkeypatch.setattr(platform.time, "sleep", slept.append)
    return slept


def busy(winerror: int = 32) -> PermissionError:
    exc = PermissionError(13, "The process cannot access the file because it is being used by another process")
    exc.winerror = winerror
    return exc


# --- the provider-key file ----------------------------------------------------------------------
def test_saving_a_key_needs_no_fchmod_and_is_owner_only_on_posix(posix, tmp_path, monkeypatch):
    monkeypatch.delattr(os, "fchmod", raising=False)  # as on Windows with Python 3.11 / 3.12
    store = SecretStore(tmp_path / "cfg" / "secrets.yaml")
    store.set("DASHSCOPE_API_KEY", KEY)
    assert store.get("DASHSCOPE_API_KEY") == KEY
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["secrets.yaml"]  # no temp file left


def test_saving_a_key_on_windows_gives_the_file_a_user_only_acl(windows, tmp_path, monkeypatch):
    monkeypatch.delattr(os, "fchmod", raising=False)
    monkeypatch.setattr(os, "chmod", lambda *a, **k: pytest.fail("chmod means nothing for an ACL"))
    monkeypatch.setenv("USERNAME", "张三")
    monkeypatch.setenv("USERDOMAIN", "DESKTOP-7")
    calls = []

    def icacls(argv):
        calls.append(argv)
        assert Path(argv[1]).read_text(encoding="utf-8").strip()  # restricted before it is renamed into place
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(platform, "_icacls", icacls)
    store = SecretStore(tmp_path / "secrets.yaml")
    store.set("ZHIPUAI_API_KEY", KEY)
    assert store.get("ZHIPUAI_API_KEY") == KEY
    (argv,) = calls
    assert argv[0] == "icacls" and Path(argv[1]).parent == tmp_path and argv[1] != str(store.path)
    assert argv[2:] == ["/inheritance:r", "/grant:r", "DESKTOP-7\\张三:F"]
    assert KEY not in " ".join(argv)


def test_a_refused_acl_still_saves_the_key_and_says_so_without_it(windows, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("USERNAME", "ana")
    monkeypatch.setattr(platform, "_icacls", lambda argv: subprocess.CompletedProcess(argv, 5, "", "denied"))
    store = SecretStore(tmp_path / "secrets.yaml")
    with caplog.at_level(logging.WARNING, logger="core.platform"):
        store.set("ARK_API_KEY", KEY)
    assert store.get("ARK_API_KEY") == KEY
    assert "icacls could not restrict" in caplog.text and KEY not in caplog.text


def test_icacls_missing_is_a_warning_not_an_error(windows, tmp_path, monkeypatch):
    monkeypatch.setenv("USERNAME", "ana")

    def missing(argv):
        raise FileNotFoundError(2, "icacls")

    f = tmp_path / "f"
    f.write_text("x", encoding="utf-8")
    assert platform.restrict_to_owner(f, run=missing) is False


# --- renames while another program holds the file ---------------------------------------------------
def test_replace_waits_until_the_player_lets_go(windows, tmp_path, fast):
    src, dst = tmp_path / "new.mp4", tmp_path / "clip.mp4"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    held = threading.Event()
    held.set()

    def replace(a, b):
        if held.is_set():
            raise busy()
        os.replace(a, b)

    def sleep(seconds):  # the player closes the file while we back off, the second time round
        fast.append(seconds)
        if len(fast) == 2:
            held.clear()

    platform.replace_with_retry(src, dst, replace=replace, sleep=sleep)
    assert dst.read_bytes() == b"new" and not src.exists()
    assert fast == [0.05, 0.1]  # backoff grows


def test_replace_that_never_frees_up_keeps_the_new_file_and_says_where(windows, tmp_path, fast):
    src, dst = tmp_path / "new.mp4", tmp_path / "clip.mp4"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")

    def replace(a, b):
        raise busy()

    with pytest.raises(FileBusy) as err:
        platform.replace_with_retry(src, dst, replace=replace)
    assert src.read_bytes() == b"new" and dst.read_bytes() == b"old"
    assert str(src) in err.value.en and str(src) in err.value.zh and err.value.fields["kept"] == str(src)
    assert fast == [0.05, 0.1, 0.2]


def test_other_errors_are_not_retried(tmp_path, fast, posix):
    with pytest.raises(FileNotFoundError):
        platform.replace_with_retry(tmp_path / "missing", tmp_path / "x")
    denied = PermissionError(13, "Permission denied")  # a real POSIX refusal: no winerror

    def replace(a, b):
        raise denied

    with pytest.raises(PermissionError):
        platform.replace_with_retry(tmp_path / "a", tmp_path / "b", replace=replace)
    assert fast == []


def test_atomic_write_to_a_busy_file_never_loses_the_output(windows, tmp_path, fast, monkeypatch):
    from core.media import atomic_write_bytes

    target = tmp_path / "job.json"
    target.write_bytes(b"old")
    real = os.replace

    def refuse_target(a, b):
        if Path(b) == target:
            raise busy()
        return real(a, b)

    monkeypatch.setattr(platform.os, "replace", refuse_target)
    with pytest.raises(FileBusy) as err:
        atomic_write_bytes(target, b"new")
    kept = Path(err.value.fields["kept"])
    assert kept.parent == tmp_path and kept.read_bytes() == b"new" and target.read_bytes() == b"old"


def test_move_dir_retries_then_copies_a_folder_windows_will_not_rename(windows, tmp_path, fast):
    src, dst = tmp_path / "tmp" / "job1", tmp_path / "outputs" / "job1"
    (src / "sub").mkdir(parents=True)
    (src / "clip.mp4").write_bytes(b"video")
    (src / "sub" / "job.json").write_text("{}", encoding="utf-8")
    dst.parent.mkdir()
    tries = []

    def rename(a, b):
        tries.append(a)
        raise busy(5)

    platform.move_dir(src, dst, rename=rename)
    assert len(tries) == 4  # first try + 3 retries
    assert (dst / "clip.mp4").read_bytes() == b"video" and (dst / "sub" / "job.json").is_file()
    assert not src.exists()


def test_move_dir_is_a_plain_rename_when_nothing_holds_it(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.mkdir()
    (src / "f").write_bytes(b"1")
    inode = (src / "f").stat().st_ino
    platform.move_dir(src, dst)
    assert (dst / "f").stat().st_ino == inode and not src.exists()


# --- long paths ------------------------------------------------------------------------------------
def test_a_deep_chinese_path_past_260_gets_a_clear_error(windows, tmp_path):
    from core.media import atomic_write_bytes

    deep = Path("C:/Users/张三/OneDrive/文档/视频工作室") / ("第一季·修仙之路" * 30) / "projects" / "episode.json"
    assert platform.path_units(deep) > 259
    with pytest.raises(PathTooLong) as err:
        platform.check_path_length(deep)
    assert f"{platform.path_units(deep)} characters" in err.value.en and "259" in err.value.en
    assert "字符" in err.value.zh and isinstance(err.value, AppError)
    target = tmp_path.joinpath(*["长" * 60] * 5, "x.json")
    with pytest.raises(PathTooLong):
        atomic_write_bytes(target, b"{}")
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


def test_path_units_count_like_windows():
    assert platform.path_units("C:/仙影") == 5
    assert platform.path_units("🎬") == 2  # outside the BMP: a surrogate pair


def test_no_limit_on_posix_or_with_long_paths_on(posix, monkeypatch):
    long = "/" + "a" * 400
    assert platform.check_path_length(long) == Path(long)
    monkeypatch.setattr(platform, "IS_WINDOWS", True)
    monkeypatch.setattr(platform, "long_paths_enabled", lambda: True)
    assert platform.check_path_length(long) == Path(long)


def test_archive_import_with_names_too_long_for_windows_leaves_nothing(windows, tmp_path):
    import zipfile

    from profiles.archive import import_zip
    from profiles.store import ProjectStore

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("project.yaml", "title: 长篇\n")
        zf.writestr("assets/" + "角色" * 150 + ".png", b"png")
    store = ProjectStore(tmp_path / "projects")
    store.root.mkdir()
    with pytest.raises(PathTooLong):
        import_zip(store, buf.getvalue())
    assert list(store.root.iterdir()) == []


def test_a_long_workspace_is_warned_about(windows):
    ws = "C:/Users/张三/Documents/" + "视频" * 60
    (en, zh), *_ = [w for w in platform.workspace_warnings(ws, environ={}) if "limit" in w[0]]
    assert "long paths" in en and "长路径" in zh
    assert platform.workspace_warnings("C:/Xianying", environ={}, drive_type=lambda root: 3) == []


# --- console and log encoding --------------------------------------------------------------------------
class _Console(io.TextIOWrapper):
    def isatty(self):
        return True


def test_redirected_output_in_gbk_or_cp1252_becomes_utf8(monkeypatch):
    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    for encoding in ("cp936", "cp1252", "ascii"):
        raw = io.BytesIO()
        stream = io.TextIOWrapper(raw, encoding=encoding)
        platform.make_console_safe([stream])
        print("仙影 Xianying ✓ 🎬", file=stream)
        stream.flush()
        assert raw.getvalue().decode("utf-8") == "仙影 Xianying ✓ 🎬\n"


def test_a_console_keeps_its_code_page_and_never_raises(monkeypatch):
    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    raw = io.BytesIO()
    console = _Console(raw, encoding="cp936")
    platform.make_console_safe([console])
    print("仙影 ✓ 🎬", file=console)
    console.flush()
    assert raw.getvalue().decode("cp936").startswith("仙影 ")  # GBK bytes for what GBK has
    assert "\\U0001f3ac" in raw.getvalue().decode("cp936")  # escaped, not a crash


def test_logging_chinese_to_a_cp1252_stream_logs_it(monkeypatch):
    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252")
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.platform.encoding")
    logger.addHandler(handler)
    try:
        platform.make_console_safe([stream])
        logger.warning("工作区位于 OneDrive 同步文件夹内")
        handler.flush()
    finally:
        logger.removeHandler(handler)
    assert "工作区位于 OneDrive" in raw.getvalue().decode("utf-8")


def test_pythonioencoding_wins(monkeypatch):
    monkeypatch.setenv("PYTHONIOENCODING", "cp936")
    stream = io.TextIOWrapper(io.BytesIO(), encoding="cp936")
    platform.make_console_safe([stream])
    assert stream.encoding == "cp936"


# --- subprocesses and stop signals ------------------------------------------------------------------
class _Proc:
    pid = 4242

    def __init__(self):
        self.sent, self.killed, self.alive = [], False, True

    def poll(self):
        return None if self.alive else 0

    def send_signal(self, sig):
        self.sent.append(sig)

    def kill(self):
        self.killed, self.alive = True, False

    def wait(self, timeout=None):
        self.alive = False
        return 0


def test_subprocess_flags_per_platform(windows):
    assert platform.no_window() == 0x08000000
    assert platform.group_kwargs() == {"creationflags": 0x200}
    windows.setattr(platform, "IS_WINDOWS", False)
    assert platform.no_window() == 0
    assert platform.group_kwargs() == {"start_new_session": True}


def test_send_stop_is_ctrl_break_on_windows_and_sigterm_on_posix(windows):
    proc = _Proc()
    platform.send_stop(proc)
    assert proc.sent == [1]  # CTRL_BREAK_EVENT: Windows has no SIGTERM to send
    windows.setattr(platform, "IS_WINDOWS", False)
    platform.send_stop(proc)
    assert proc.sent == [1, signal.SIGTERM]


def test_kill_tree_uses_taskkill_on_windows(windows):
    proc, killed = _Proc(), []

    def taskkill(pid):
        killed.append(pid)
        proc.alive = False

    platform.kill_tree(proc, taskkill=taskkill)
    assert killed == [4242] and not proc.killed


@pytest.mark.skipif(sys.platform == "win32", reason="the POSIX branch, for real")
def test_kill_tree_ends_grandchildren_on_posix(posix, tmp_path):
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE,
                            **platform.group_kwargs())
    grandchild = int(proc.stdout.readline())
    platform.kill_tree(proc)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    stat = Path(f"/proc/{grandchild}/stat")
    for _ in range(2000):  # gone, or a zombie waiting for init to reap it
        if not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z":
            break
        threading.Event().wait(0.01)
    else:
        pytest.fail("the grandchild outlived kill_tree")


def test_stop_signals(windows):
    windows.setattr(signal, "SIGBREAK", 21, raising=False)
    assert platform.stop_signals() == (signal.SIGINT, signal.SIGTERM, 21)
    windows.setattr(platform, "IS_WINDOWS", False)
    if hasattr(signal, "SIGHUP"):
        saved = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # (the suite may itself run under nohup)
        try:
            assert platform.stop_signals() == (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        finally:
            signal.signal(signal.SIGHUP, saved)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGHUP is POSIX")
def test_a_nohup_studio_keeps_ignoring_hangups(posix):
    saved = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup leaves behind
    try:
        assert platform.stop_signals() == (signal.SIGINT, signal.SIGTERM)
    finally:
        signal.signal(signal.SIGHUP, saved)


# --- where the workspace lives ------------------------------------------------------------------
MOUNTS = """/dev/sda1 / ext4 rw 0 0
nas:/export/video /mnt/nas nfs4 rw 0 0
//server/share /mnt/smb\\040share cifs rw 0 0
"""


def test_network_drives_posix(posix):
    assert platform.is_network_path("/mnt/nas/ws", mounts=MOUNTS)
    assert platform.is_network_path("/mnt/smb share/ws", mounts=MOUNTS)
    assert not platform.is_network_path("/mnt/nasty/ws", mounts=MOUNTS)
    assert not platform.is_network_path("/home/a/ws", mounts=MOUNTS)
    assert platform.sqlite_journal_mode("/mnt/nas/ws/studio.db", mounts=MOUNTS) == "delete"
    assert platform.sqlite_journal_mode("/home/a/ws/studio.db", mounts=MOUNTS) == "wal"


def test_network_drives_windows(windows):
    assert platform.is_network_path("\\\\server\\share\\ws")
    assert platform.is_network_path("Z:\\ws", drive_type=lambda root: 4 if root == "Z:\\" else 3)
    assert not platform.is_network_path("C:\\ws", drive_type=lambda root: 3)
    assert not platform.is_network_path("\\\\?\\C:\\ws", drive_type=lambda root: 3)


def test_cloud_synced_folders():
    env = {"OneDrive": "C:\\Users\\张三\\OneDrive"}
    assert platform.cloud_sync_folder("C:\\Users\\张三\\OneDrive\\文档\\ws", environ=env) == "OneDrive"
    assert platform.cloud_sync_folder("C:\\Users\\a\\OneDrive - Contoso\\ws", environ={}) == "OneDrive"
    assert platform.cloud_sync_folder("/home/a/Dropbox/ws", environ={}) == "dropbox"
    assert platform.cloud_sync_folder("D:\\Xianying\\workspace", environ=env) is None
    assert platform.cloud_sync_folder("C:\\Users\\张三\\OneDriveBackup\\..", environ={}) == "OneDrive"


def test_onedrive_workspace_is_warned_in_both_languages():
    env = {"OneDriveConsumer": "C:\\Users\\a\\OneDrive"}
    warnings = platform.workspace_warnings("C:\\Users\\a\\OneDrive\\ws", environ=env, mounts="")
    assert any("OneDrive" in en and "corrupt" in en and "OneDrive" in zh for en, zh in warnings)


def test_database_on_a_network_drive_uses_a_rollback_journal(tmp_path, monkeypatch):
    from app.backends import make_database

    def journal(path):
        db = make_database(path)
        db.connect()
        try:
            return db.execute_sql("PRAGMA journal_mode").fetchone()[0]
        finally:
            db.close()

    assert journal(tmp_path / "local.db") == "wal"
    monkeypatch.setattr(platform, "is_network_path", lambda path, **probes: True)
    assert journal(tmp_path / "nas.db") == "delete"


def test_an_episode_is_published_once_even_when_windows_holds_the_staged_file(tmp_path, monkeypatch):
    from app.episodes import publish

    staged = tmp_path / "tmp" / "episode.mp4"
    staged.parent.mkdir()
    staged.write_bytes(b"episode")
    real_unlink = Path.unlink

    def held(self, missing_ok=False):
        if self == staged:  # Defender scanning the fresh file: the staged name cannot go yet
            raise busy()
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", held)
    final, version = publish(staged, tmp_path / "renders", "ep1")
    assert (final.name, version) == ("ep1_v1.mp4", 1) and final.read_bytes() == b"episode"
    assert sorted(p.name for p in (tmp_path / "renders").iterdir()) == ["ep1_v1.mp4"]  # not v1 and v2


# --- on a real Windows (the windows.yml workflow) ----------------------------------------------------
@pytest.mark.skipif(sys.platform != "win32", reason="real Windows behaviour")
def test_windows_refuses_to_replace_an_open_file_until_it_is_closed(tmp_path):
    src, dst = tmp_path / "new.mp4", tmp_path / "clip.mp4"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    player = open(dst, "rb")  # noqa: SIM115 (closed by the backoff below, like a player letting go)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        player.close()

    try:
        platform.replace_with_retry(src, dst, sleep=sleep)
    finally:
        player.close()
    assert waits, "Windows let an open file be replaced: the retry was never needed"
    assert dst.read_bytes() == b"new"


@pytest.mark.skipif(sys.platform != "win32", reason="real icacls")
def test_the_key_file_gets_a_user_only_acl_on_windows(tmp_path):
    store = SecretStore(tmp_path / "secrets.yaml")
    store.set("DASHSCOPE_API_KEY", KEY)
    assert store.get("DASHSCOPE_API_KEY") == KEY
    listing = subprocess.run(["icacls", str(store.path)], capture_output=True, check=True,
                             creationflags=platform.no_window()).stdout.decode("oem", "replace")
    entries = [line for line in listing.splitlines()[:-1] if ":" in line and "(" in line]
    assert entries and "(I)" not in listing, listing  # nothing inherited from the folder
    assert all(os.environ["USERNAME"].lower() in line.lower() for line in entries), listing


def test_lower_priority_asks_windows_for_below_normal(windows, monkeypatch):
    import ctypes

    calls = []

    class Kernel32:
        def GetCurrentProcess(self):
            return "me"

        def SetPriorityClass(self, handle, cls):
            calls.append((handle, cls))
            return 1

    monkeypatch.setattr(ctypes, "windll", type("WinDLL", (), {"kernel32": Kernel32()})(), raising=False)
    assert platform.lower_priority() is True
    assert calls == [("me", 0x4000)]  # BELOW_NORMAL_PRIORITY_CLASS


def test_lower_priority_on_posix_is_nice_10(posix, monkeypatch):
    steps = []
    monkeypatch.setattr(platform.os, "nice", lambda n: steps.append(n) or n)
    assert platform.lower_priority() is True and steps == [10]
    monkeypatch.setattr(platform.os, "nice", lambda n: (_ for _ in ()).throw(PermissionError("no")))
    assert platform.lower_priority() is False
