"""PyInstaller runtime hook: runs in the frozen app before ``launch.py``. Writes nothing.

- Offline defaults that must be set before Gradio or huggingface_hub are imported.
- On Linux the bootloader prepends the bundle's ``_internal`` folder to ``LD_LIBRARY_PATH``.
  The process has already loaded its libraries by now, so only child processes still see it:
  the browser that ``webbrowser.open`` starts through xdg-open would load the bundle's
  libstdc++/libssl instead of the system's. Restore the user's original value for them
  (the bundled ffmpeg is a static binary and needs neither).
- Load the ``idna`` codec now, in the main thread. Every ``socket.getaddrinfo`` call looks it
  up; the first lookup otherwise happens in a queue worker thread while the server thread is
  still importing, and a failed lookup is cached for the life of the process (seen once in the
  bundle under heavy load: "LookupError: unknown encoding: idna" on a cloud job).
"""

import encodings.idna  # noqa: F401
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

if sys.platform.startswith("linux") and getattr(sys, "frozen", False):
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)
