"""Fail when code that only works on POSIX creeps into the studio (most users run it on Windows).

    python tools/posix_audit.py [paths...]      (default: app engines profiles launch.py)

Reads the sources with ``ast`` (standard library only, well under a second) and reports each call
or import that breaks, or behaves differently, on Windows, with the helper in ``core/platform.py``
to use instead. The seam itself (``core/platform.py``, ``app/winstop.py``) is exempt; a line that is
right as it stands can say so with a trailing ``# posix-ok: <why>``. Exit status 1 when anything is
found, so CI (``.ci/run``) and ``tests/test_posix_audit.py`` fail on a new case.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ("app", "core", "engines", "profiles", "launch.py")
SEAM = ("core/platform.py", "app/winstop.py")
WAIVER = "posix-ok:"

POSIX_ONLY_OS = {
    "fchmod": "os.fchmod does not exist on Windows: use core.platform.restrict_to_owner",
    "fchown": "os.fchown does not exist on Windows", "chown": "os.chown does not exist on Windows",
    "lchown": "os.lchown does not exist on Windows",
    "chmod": "chmod only toggles read-only on Windows: use core.platform.restrict_to_owner",
    "kill": "os.kill on Windows terminates outright (no signals): use core.platform.send_stop / kill_tree",
    "killpg": "os.killpg does not exist on Windows: use core.platform.kill_tree",
    "getpgid": "process groups are POSIX: use core.platform.group_kwargs / kill_tree",
    "setsid": "os.setsid does not exist on Windows: use core.platform.group_kwargs",
    "setpgrp": "os.setpgrp does not exist on Windows: use core.platform.group_kwargs",
    "fork": "no fork on Windows: start a process (subprocess, multiprocessing spawn)",
    "forkpty": "no fork on Windows", "getuid": "os.getuid does not exist on Windows",
    "geteuid": "os.geteuid does not exist on Windows", "getgid": "os.getgid does not exist on Windows",
    "statvfs": "os.statvfs does not exist on Windows: use shutil.disk_usage",
    "mkfifo": "no FIFOs on Windows", "sync": "os.sync does not exist on Windows",
    "symlink": "symlinks need admin rights or developer mode on Windows",
    "rename": "a rename fails on Windows while another program has the file open: use "
              "core.platform.replace_with_retry (files) or move_dir (folders)",
    "replace": "a rename fails on Windows while another program has the file open: use "
               "core.platform.replace_with_retry",
}
POSIX_ONLY_SIGNALS = {"SIGHUP", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGCHLD", "SIGALRM", "SIGPIPE",
                      "SIGSTOP", "SIGCONT", "SIGTSTP", "SIGWINCH"}
POSIX_ONLY_SIGNAL_CALLS = {"alarm", "setitimer", "pause", "pthread_kill", "pthread_sigmask", "sigwait", "siginterrupt"}
POSIX_ONLY_MODULES = {"fcntl", "termios", "pwd", "grp", "resource", "posix", "tty", "pty", "crypt", "syslog"}
SUBPROCESS_CALLS = {"Popen", "run", "call", "check_call", "check_output"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule} {self.message}"


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "?")  # ?.open(): a method of some value
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == name), None)


def _has_star_kwargs(call: ast.Call) -> bool:
    return any(k.arg is None for k in call.keywords)


def _const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Visitor(ast.NodeVisitor):
    def __init__(self, rel: str):
        self.rel = rel
        self.found: list[Finding] = []
        self.aliases: dict[str, str] = {}  # local name -> module (import os as _os; from os import replace)

    def add(self, node: ast.AST, rule: str, message: str) -> None:
        self.found.append(Finding(self.rel, node.lineno, rule, message))

    # imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top in POSIX_ONLY_MODULES:
                self.add(node, "PX7", f"'{alias.name}' does not exist on Windows")
            self.aliases[alias.asname or top] = alias.name
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module.split(".")[0] in POSIX_ONLY_MODULES:
            self.add(node, "PX7", f"'{module}' does not exist on Windows")
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        self.generic_visit(node)

    def _resolve(self, func: ast.AST) -> str:
        name = _dotted(func)
        head, _, rest = name.partition(".")
        if head in self.aliases:
            return f"{self.aliases[head]}.{rest}" if rest else self.aliases[head]
        return name

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self._resolve(node)
        if name.startswith("signal.") and node.attr in POSIX_ONLY_SIGNALS:
            self.add(node, "PX3", f"signal.{node.attr} does not exist on Windows: use core.platform.stop_signals")
        if name in ("os.name", "sys.platform"):
            self.add(node, "PX9", f"{name} check outside the seam: put the difference in core/platform.py")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self._resolve(node.func)
        attr = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if name.startswith("os.") and name[3:] in POSIX_ONLY_OS:
            self.add(node, "PX1" if name[3:] in ("rename", "replace") else "PX2", POSIX_ONLY_OS[name[3:]])
        elif name == "shutil.move":
            self.add(node, "PX1", POSIX_ONLY_OS["rename"])
        elif attr in ("rename", "replace") and len(node.args) == 1 and not node.keywords \
                and not name.startswith(("os.", "shutil.")):
            self.add(node, "PX1", f"Path.{attr}: " + POSIX_ONLY_OS["rename"])  # str.replace takes 2 args
        elif attr == "chmod" and not name.startswith("os."):
            self.add(node, "PX2", POSIX_ONLY_OS["chmod"])
        elif name.startswith("signal.") and name[7:] in POSIX_ONLY_SIGNAL_CALLS:
            self.add(node, "PX3", f"{name} does not exist on Windows")
        elif name == "signal.signal" and node.args and self._resolve(node.args[0]) == "signal.SIGTERM":
            self.add(node, "PX3", "Windows never delivers SIGTERM: install handlers for core.platform.stop_signals() "
                                  "(and app.winstop for console close / log-off)")
        elif attr == "send_signal":
            self.add(node, "PX3", "send_signal(SIGTERM/SIGINT) fails or kills outright on Windows: "
                                  "use core.platform.send_stop")
        if name.startswith("subprocess.") and name[11:] in SUBPROCESS_CALLS:
            self._subprocess(node, name)
        if name in ("multiprocessing.set_start_method", "multiprocessing.get_context") and node.args \
                and _const_str(node.args[0]) in ("fork", "forkserver"):
            self.add(node, "PX8", "no fork on Windows: use the default start method (spawn)")
        self._encoding(node, name, attr)
        self.generic_visit(node)

    def _subprocess(self, node: ast.Call, name: str) -> None:
        for kw in ("preexec_fn", "start_new_session", "process_group", "user", "group", "extra_groups", "umask"):
            if _kw(node, kw):
                self.add(node, "PX5", f"{name}({kw}=...) is POSIX-only: use core.platform.group_kwargs()")
        if not _kw(node, "creationflags") and not _has_star_kwargs(node):
            self.add(node, "PX6", f"{name} without creationflags flashes a console window on Windows: "
                                  "pass creationflags=core.platform.no_window() (or **group_kwargs())")

    def _encoding(self, node: ast.Call, name: str, attr: str | None) -> None:
        if _kw(node, "encoding") or _has_star_kwargs(node):
            return
        if name == "open" or name == "io.open":
            mode = _const_str(node.args[1]) if len(node.args) > 1 else _const_str(getattr(_kw(node, "mode"), "value", None))
            if len(node.args) > 3:  # open(file, mode, buffering, encoding)
                return
            if mode is None and (len(node.args) > 1 or _kw(node, "mode")):
                return  # a computed mode: cannot tell
            if "b" not in (mode or "r"):
                self.add(node, "PX4", "text open() without encoding= uses the ANSI code page on Windows "
                                      "(cp936 / cp1252): pass encoding='utf-8'")
        elif attr == "read_text" and not node.args:
            self.add(node, "PX4", "read_text() without encoding= reads cp936 / cp1252 on Windows: "
                                  "pass encoding='utf-8'")
        elif attr == "write_text" and len(node.args) < 2:
            self.add(node, "PX4", "write_text() without encoding= writes cp936 / cp1252 on Windows: "
                                  "pass encoding='utf-8'")


def audit_source(source: str, rel: str) -> list[Finding]:
    tree = ast.parse(source, filename=rel)
    visitor = _Visitor(rel)
    visitor.visit(tree)
    lines = source.splitlines()
    keep = []
    for f in visitor.found:
        line = lines[f.line - 1] if 0 < f.line <= len(lines) else ""
        if WAIVER not in line:
            keep.append(f)
    return sorted(set(keep), key=lambda f: (f.path, f.line, f.rule))


def python_files(paths) -> list[Path]:
    out = []
    for p in paths:
        p = (ROOT / p) if not Path(p).is_absolute() else Path(p)
        if p.is_file() and p.suffix == ".py":
            out.append(p)
        elif p.is_dir():
            out += sorted(f for f in p.rglob("*.py") if "__pycache__" not in f.parts)
    return out


def audit(paths=DEFAULT_PATHS) -> list[Finding]:
    found = []
    for f in python_files(paths):
        rel = f.relative_to(ROOT).as_posix() if f.is_relative_to(ROOT) else f.as_posix()
        if rel in SEAM:
            continue
        found += audit_source(f.read_text(encoding="utf-8"), rel)
    return found


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    found = audit(argv or DEFAULT_PATHS)
    for f in found:
        print(f)
    if found:
        print(f"posix_audit: {len(found)} POSIX-only use(s); fix them through core/platform.py, or end the line "
              f"with '# {WAIVER} <why>' when it is right as it is.", file=sys.stderr)
        return 1
    print(f"posix_audit: {len(python_files(argv or DEFAULT_PATHS))} files clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
