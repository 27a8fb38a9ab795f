"""Stopping cleanly when Windows ends the studio without a signal.

Ctrl-C and Ctrl-Break reach Python as SIGINT and SIGBREAK (uvicorn handles both). Closing the
console window, logging off and shutting down do not: Windows calls a console control handler
(``CTRL_CLOSE_EVENT`` and, for a console program without a window, ``CTRL_LOGOFF_EVENT`` /
``CTRL_SHUTDOWN_EVENT``) or sends ``WM_ENDSESSION`` to the program's windows, and ends the process
as soon as the handler returns. So ``install(request_stop, stopped)``:

* registers a console handler that, for close / log-off / shut-down, calls ``request_stop()`` and
  holds Windows off until ``stopped`` is set (the studio has shut down) or ``grace`` runs out;
* starts a hidden top-level window whose ``WM_ENDSESSION`` does the same — the path a windowed
  build (no console) and a program that loaded user32 get at log-off and shut-down.

On POSIX it does nothing (SIGTERM / SIGHUP are signals there; see ``core.platform.stop_signals``).
The decisions (``console_event``, ``window_message``) are plain functions the tests call on Linux.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from core import platform

log = logging.getLogger(__name__)

CTRL_C_EVENT, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT = 0, 1, 2, 5, 6
ENDING_EVENTS = (CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT)
WM_QUERYENDSESSION, WM_ENDSESSION = 0x0011, 0x0016
GRACE_S = 20.0  # Windows itself ends a process ~5 s after close and at its log-off timeout

_keep: list = []  # ctypes callbacks must outlive the registration


def console_event(ctrl_type: int, request_stop: Callable[[], None], stopped: threading.Event,
                  grace: float = GRACE_S) -> bool:
    """The console handler's answer. Ctrl-C / Ctrl-Break: False, so Python's own handler raises
    SIGINT / SIGBREAK as usual. Close, log-off, shut-down: stop, wait, then True (handled)."""
    if ctrl_type not in ENDING_EVENTS:
        return False
    log.info("Windows is ending the studio (console event %s); stopping", ctrl_type)
    request_stop()
    stopped.wait(grace)
    return True


def window_message(msg: int, wparam: int, request_stop: Callable[[], None], stopped: threading.Event,
                   grace: float = GRACE_S) -> int | None:
    """The hidden window's answer, or None to leave the message to ``DefWindowProc``."""
    if msg == WM_QUERYENDSESSION:
        return 1  # yes, the session may end: we stop on WM_ENDSESSION
    if msg == WM_ENDSESSION:
        if wparam:  # the session really ends (0: it was cancelled)
            log.info("Windows session ending; stopping")
            request_stop()
            stopped.wait(grace)
        return 0
    return None


def install(request_stop: Callable[[], None], stopped: threading.Event, *, grace: float = GRACE_S) -> bool:
    """Hook the studio's stop into Windows' end-of-session paths; False (nothing done) elsewhere."""
    if not platform.IS_WINDOWS:
        return False
    try:
        _console_handler(request_stop, stopped, grace)
    except (OSError, AttributeError) as exc:
        log.warning("no console close handler: %s", exc)
    threading.Thread(target=_session_window, args=(request_stop, stopped, grace), daemon=True,
                     name="end-session-window").start()
    return True


def _console_handler(request_stop, stopped, grace) -> None:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handler_type = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)
    callback = handler_type(lambda ctrl: bool(console_event(int(ctrl), request_stop, stopped, grace)))
    _keep.append(callback)
    if not kernel32.SetConsoleCtrlHandler(callback, True):
        raise ctypes.WinError(ctypes.get_last_error())


def _session_window(request_stop, stopped, grace) -> None:  # pragma: no cover - Windows only
    try:
        import ctypes
        from ctypes import wintypes

        user32 = ctypes.WinDLL("user32", use_last_error=True)
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        lresult = ctypes.c_ssize_t
        wndproc_type = ctypes.WINFUNCTYPE(lresult, wintypes.HWND, wintypes.UINT, wintypes.WPARAM, wintypes.LPARAM)
        user32.DefWindowProcW.argtypes = [wintypes.HWND, wintypes.UINT, wintypes.WPARAM, wintypes.LPARAM]
        user32.DefWindowProcW.restype = lresult
        user32.CreateWindowExW.restype = wintypes.HWND
        user32.CreateWindowExW.argtypes = [wintypes.DWORD, wintypes.LPCWSTR, wintypes.LPCWSTR, wintypes.DWORD,
                                           ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, wintypes.HWND,
                                           wintypes.HMENU, wintypes.HINSTANCE, wintypes.LPVOID]
        kernel32.GetModuleHandleW.restype = wintypes.HMODULE

        class WNDCLASSW(ctypes.Structure):
            _fields_ = [("style", wintypes.UINT), ("lpfnWndProc", wndproc_type), ("cbClsExtra", ctypes.c_int),
                        ("cbWndExtra", ctypes.c_int), ("hInstance", wintypes.HINSTANCE),
                        ("hIcon", wintypes.HICON), ("hCursor", wintypes.HANDLE), ("hbrBackground", wintypes.HBRUSH),
                        ("lpszMenuName", wintypes.LPCWSTR), ("lpszClassName", wintypes.LPCWSTR)]

        def proc(hwnd, msg, wparam, lparam):
            answer = window_message(msg, wparam, request_stop, stopped, grace)
            return user32.DefWindowProcW(hwnd, msg, wparam, lparam) if answer is None else answer

        callback = wndproc_type(proc)
        _keep.append(callback)
        hinstance = kernel32.GetModuleHandleW(None)
        wc = WNDCLASSW(lpfnWndProc=callback, hInstance=hinstance, lpszClassName="XianyingEndSession")
        if not user32.RegisterClassW(ctypes.byref(wc)):
            raise ctypes.WinError(ctypes.get_last_error())
        hwnd = user32.CreateWindowExW(0, "XianyingEndSession", "Xianying Studio", 0, 0, 0, 0, 0,
                                      None, None, hinstance, None)
        if not hwnd:
            raise ctypes.WinError(ctypes.get_last_error())
        msg = wintypes.MSG()
        while user32.GetMessageW(ctypes.byref(msg), None, 0, 0) > 0:
            user32.TranslateMessage(ctypes.byref(msg))
            user32.DispatchMessageW(ctypes.byref(msg))
    except Exception as exc:  # noqa: BLE001 (a missing window only loses the log-off hook)
        log.warning("no end-of-session window: %s", exc)
