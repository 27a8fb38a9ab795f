"""Provider keys: environment first, then an owner-only YAML file outside the repository.

The file defaults to the user's config directory (``platformdirs``; on Windows
``%LOCALAPPDATA%\\xianying\\secrets.yaml``), or ``settings.secrets_file`` / ``XIANYING_SECRETS``.
Only its owner may read it: mode 0600 on POSIX, a user-only ACL on Windows
(``core.platform.restrict_to_owner``). Values never leave this module except to the adapter that
signs a request: ``describe()`` shows only which names are set.

Every request a cloud job sends asks for its key (a create, each poll), so the file is parsed again
only when it changed (its size, modification time or inode: ``set`` replaces it by a rename, from
this process or another); a lookup costs one ``stat`` (4 µs), not a YAML parse (127 µs), several
times per job.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from core.platform import replace_with_retry, restrict_to_owner

KNOWN = (
    "DASHSCOPE_API_KEY",
    "ZHIPUAI_API_KEY",
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "TENCENTCLOUD_VOD_SUBAPPID",
    "ARK_API_KEY",
)


def default_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("xianying", appauthor=False)) / "secrets.yaml"


class SecretStore:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else default_path()
        self._seen: tuple | None = None  # (size, mtime_ns, inode) of the file last parsed
        self._keys: dict[str, str] = {}

    def _read(self) -> dict[str, str]:
        """The file's keys (a copy), parsed again only when the file changed."""
        try:
            st = self.path.stat()
        except OSError:
            self._seen, self._keys = None, {}
            return {}
        seen = (st.st_size, st.st_mtime_ns, st.st_ino)
        if seen != self._seen:
            self._keys, self._seen = self._parse(), seen
        return dict(self._keys)

    def _parse(self) -> dict[str, str]:
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            return {}
        except (OSError, yaml.YAMLError):
            return {}
        return {str(k): str(v) for k, v in data.items() if v not in (None, "")} if isinstance(data, dict) else {}

    def get(self, name: str) -> str | None:
        value = os.environ.get(name)
        if value:
            return value
        return self._read().get(name)

    def source(self, name: str) -> str | None:
        """'env', 'file' or None: where a key comes from, without revealing it."""
        if os.environ.get(name):
            return "env"
        return "file" if name in self._read() else None

    def set(self, name: str, value: str | None) -> None:
        """Store (or with ``None``/"" remove) a key; the file is written owner-only, atomically."""
        data = self._read()
        if value:
            data[name] = value.strip()
        else:
            data.pop(name, None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".secrets-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp: 0600 on POSIX
                yaml.safe_dump(data, fh, allow_unicode=True)
            restrict_to_owner(Path(tmp))
            replace_with_retry(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def describe(self) -> dict[str, str | None]:
        return {name: self.source(name) for name in KNOWN}
