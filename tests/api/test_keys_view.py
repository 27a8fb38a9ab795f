"""Settings → API keys (app/ui/keys_view.py): admins only, keys shown once, never listed."""

from __future__ import annotations

import pytest


def test_keys_section(make_api):
    import gradio as gr

    from app.admin import AdminService
    from app.api.auth import LOCAL
    from app.ui import keys_view

    api = make_api(users={"boss": {"admin": True}})
    with gr.Blocks():
        load, outputs = keys_view.build(api.studio, lambda key: key, AdminService(api.studio))
    assert len(outputs) == 1 and callable(load)
    assert "No API keys" in keys_view.keys_markdown(api.studio, "en")
    row, key = api.studio.ops.keys.create("alice", label="farm | 1")
    table = keys_view.keys_markdown(api.studio, "zh")
    assert row.id in table and "alice" in table and key not in table and "farm \\| 1" in table

    from core.errors import Forbidden

    admin = AdminService(api.studio)
    assert admin.keys(LOCAL)
    boss = api.studio.ops.keys.verify(api.studio.ops.keys.create("boss")[1])
    assert boss.admin  # admin: true in users/boss.yaml
    admin.keys(boss)
    alice = api.studio.ops.keys.verify(key)
    with pytest.raises(Forbidden):
        admin.keys(alice)
    with pytest.raises(Forbidden):
        admin.create_key(alice, "mallory", admin=True)
    with pytest.raises(Forbidden):
        admin.set_provider_key(alice, "ARK_API_KEY", "sk-attacker")
    assert api.studio.secrets.get("ARK_API_KEY") is None
