"""Provider keys in the owner-only file (app/secrets.py): parsed again only when the file changes."""

from __future__ import annotations

import os

import yaml

from app import secrets
from app.secrets import SecretStore


def test_a_key_is_read_once_and_a_change_from_another_store_is_seen(tmp_path, monkeypatch):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    path = tmp_path / "secrets.yaml"
    ui, cloud = SecretStore(path), SecretStore(path)  # the server's store, and the cloud process's
    assert cloud.get("DASHSCOPE_API_KEY") is None
    ui.set("DASHSCOPE_API_KEY", "sk-first-0000")
    parsed = []
    real = yaml.safe_load
    monkeypatch.setattr(secrets.yaml, "safe_load", lambda text: parsed.append(1) or real(text))
    assert [cloud.get("DASHSCOPE_API_KEY") for _ in range(50)] == ["sk-first-0000"] * 50
    assert len(parsed) == 1  # one parse, then a stat per lookup
    ui.set("DASHSCOPE_API_KEY", "sk-other-1111")  # same length: the rename gives it away
    assert cloud.get("DASHSCOPE_API_KEY") == "sk-other-1111"
    ui.set("DASHSCOPE_API_KEY", None)
    assert cloud.get("DASHSCOPE_API_KEY") is None and cloud.describe()["DASHSCOPE_API_KEY"] is None


def test_a_hand_edit_in_place_is_seen_and_a_removed_file_means_no_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("ARK_API_KEY", raising=False)
    path = tmp_path / "secrets.yaml"
    path.write_text("ARK_API_KEY: ark-aaaa\n", encoding="utf-8")
    store = SecretStore(path)
    assert store.get("ARK_API_KEY") == "ark-aaaa"
    with open(path, "r+", encoding="utf-8") as fh:  # same file, same size, new content
        fh.write("ARK_API_KEY: ark-bbbb\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # (a coarse clock: a later mtime)
    assert store.get("ARK_API_KEY") == "ark-bbbb"
    path.unlink()
    assert store.get("ARK_API_KEY") is None
    path.write_text("ARK_API_KEY: [not, a, key\n", encoding="utf-8")  # unreadable YAML: no keys, no error
    assert store.get("ARK_API_KEY") is None
