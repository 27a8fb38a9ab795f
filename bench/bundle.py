"""Desktop bundle figures: build time, folder size, and cold start to the first HTTP 200 of the
frozen binary next to ``python launch.py`` (median of several runs, fresh workspace each run).

    python bench/bundle.py                      # lite: reuse a cached build, 5 starts each
    python bench/bundle.py --variant full --runs 3
    python bench/bundle.py --rebuild --json bench-bundle.json

"Cold" means a new process and a new, empty workspace; the OS file cache is warm after the
first run (the first run is reported separately). Each start runs sealed off (own HOME, XDG
folders, temp and working directory), exactly like the CI smoke test.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.bundle.builder import build_bundle, exe_in, folder_size
from tests.bundle.proc import App, Sandbox, free_port


def start_times(cmd_of, runs: int, tag: str, extra_env: dict | None = None) -> list[float]:
    times = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix=f"xy-bench-{tag}-") as tmp:
            sandbox = Sandbox(Path(tmp))
            port = free_port()
            app = App(cmd_of(sandbox, port), sandbox, port, sandbox.env(**(extra_env or {})), tag=f"{tag}{i}")
            try:
                times.append(app.wait_ready(timeout=300))
                code = app.stop()
                if code != 0:
                    raise RuntimeError(f"{tag} exited with {code}:\n{app.output()[-2000:]}")
            finally:
                app.kill()
    return times


def summary(times: list[float]) -> dict:
    return {"first_s": round(times[0], 2), "median_s": round(statistics.median(times), 2),
            "min_s": round(min(times), 2), "max_s": round(max(times), 2), "runs": len(times)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=("lite", "full"), default="lite")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rebuild", action="store_true", help="build even when a cached bundle matches")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    folder, build_s = build_bundle(args.variant, force=args.rebuild)
    exe = exe_in(folder)
    bundle = start_times(lambda sb, port: [str(exe), "--no-browser", "--workspace", str(sb.workspace),
                                           "--port", str(port)], args.runs, "bundle")
    source = start_times(lambda sb, port: [sys.executable, str(ROOT / "launch.py"), "--no-browser",
                                           "--workspace", str(sb.workspace), "--port", str(port)],
                         args.runs, "source", {"PYTHONPATH": str(ROOT)})
    result = {
        "variant": args.variant,
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "build_s": round(build_s, 1) if build_s is not None else None,
        "size_mib": round(folder_size(folder) / 2**20),
        "bundle_start": summary(bundle),
        "launch_py_start": summary(source),
    }
    built = f"{result['build_s']} s" if build_s is not None else "cached (use --rebuild to time it)"
    print(f"variant            {args.variant}")
    print(f"build              {built}")
    print(f"bundle size        {result['size_mib']} MiB  ({folder})")
    for name, key in (("bundle", "bundle_start"), ("python launch.py", "launch_py_start")):
        s = result[key]
        print(f"{name:<18} first {s['first_s']:.2f} s, median {s['median_s']:.2f} s "
              f"(min {s['min_s']:.2f}, max {s['max_s']:.2f}, {s['runs']} runs) to first HTTP 200")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
