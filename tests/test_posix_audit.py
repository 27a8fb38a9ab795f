"""tools/posix_audit.py: the tree is clean, and each kind of POSIX-only code is caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import posix_audit  # noqa: E402


def test_the_tree_has_no_posix_only_code():
    found = posix_audit.audit()
    assert found == [], "\n".join(map(str, found))


def test_ci_runs_the_audit_before_the_tests():
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "tools/posix_audit.py" in run
    assert run.index("tools/posix_audit.py") < run.index("python -m pytest")
    workflow = (ROOT / ".github" / "workflows" / "windows.yml").read_text(encoding="utf-8")
    assert "tools/posix_audit.py" in workflow and "windows-latest" in workflow


@pytest.mark.parametrize("rule, code", [
    ("PX2", "import os\nos.fchmod(fd, 0o600)\n"),
    ("PX2", "from pathlib import Path\nPath('x').chmod(0o600)\n"),
    ("PX1", "import os\nos.replace(a, b)\n"),
    ("PX1", "import os as _os\n_os.rename(a, b)\n"),
    ("PX1", "from os import replace\nreplace(a, b)\n"),
    ("PX1", "import shutil\nshutil.move(a, b)\n"),
    ("PX1", "tmp.rename(folder)\n"),
    ("PX1", "part.replace(dest)\n"),
    ("PX3", "import signal\nsignal.signal(signal.SIGTERM, handler)\n"),
    ("PX3", "import signal\nx = signal.SIGHUP\n"),
    ("PX3", "import signal\nsignal.alarm(3)\n"),
    ("PX3", "child.send_signal(sig)\n"),
    ("PX2", "import os\nos.killpg(pid, 9)\n"),
    ("PX2", "import os\nos.fork()\n"),
    ("PX5", "import subprocess\nsubprocess.Popen(cmd, preexec_fn=f, creationflags=0)\n"),
    ("PX5", "import subprocess\nsubprocess.run(cmd, start_new_session=True, creationflags=0)\n"),
    ("PX6", "import subprocess\nsubprocess.run(['ffmpeg', '-i', x])\n"),
    ("PX7", "import fcntl\n"),
    ("PX7", "from pwd import getpwuid\n"),
    ("PX8", "import multiprocessing\nmultiprocessing.set_start_method('fork')\n"),
    ("PX4", "open(path, 'w')\n"),
    ("PX4", "open(path)\n"),
    ("PX4", "p.read_text()\n"),
    ("PX4", "p.write_text('仙影')\n"),
    ("PX9", "import os\nif os.name == 'nt':\n    pass\n"),
    ("PX9", "import sys\nwin = sys.platform == 'win32'\n"),
])
def test_each_rule_fires(rule, code):
    found = posix_audit.audit_source(code, "app/x.py")
    assert rule in {f.rule for f in found}, found


@pytest.mark.parametrize("code", [
    "text.replace('a', 'b')\n",
    "open(path, 'rb')\n",
    "open(path, 'w', encoding='utf-8')\n",
    "p.read_text(encoding='utf-8')\n",
    "p.write_text('x', encoding='utf-8')\n",
    "p.read_bytes()\n",
    "image = fit(need_image(req).open())\n",
    "import subprocess\nsubprocess.run(cmd, creationflags=no_window())\n",
    "import subprocess\nsubprocess.Popen(cmd, **group_kwargs())\n",
    "import os\nos.chmod(p, 0o600)  # posix-ok: a test fixture\n",
    "from core.platform import replace_with_retry\nreplace_with_retry(a, b)\n",
])
def test_what_is_fine_stays_quiet(code):
    assert posix_audit.audit_source(code, "app/x.py") == []


def test_the_seam_is_exempt_and_the_script_exits_nonzero_on_a_finding(tmp_path):
    seam = posix_audit.audit([ROOT / "app" / "platform.py", ROOT / "app" / "winstop.py"])
    assert seam == []
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nos.fchmod(3, 0o600)\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "posix_audit.py"), str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "PX2" in proc.stdout and "fchmod" in proc.stdout
    clean = subprocess.run([sys.executable, str(ROOT / "tools" / "posix_audit.py")], capture_output=True, text=True,
                           check=False, cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
