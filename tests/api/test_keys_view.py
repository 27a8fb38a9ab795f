"""Settings → API keys (app/ui/keys_view.py): admins only, keys shown once, never listed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def test_keys_section(make_api):
    import gradio as gr

    from app.api.auth import LOCAL
    from app.api.middleware import PRINCIPAL
    from app.errors import Unauthorized
    from app.ui import keys_view

    api = make_api(users={"boss": {"admin": True}})
    with gr.Blocks():
        load, outputs = keys_view.build(api.studio, lambda key: key)
    assert len(outputs) == 1 and callable(load)
    assert "No API keys" in keys_view.keys_markdown(api.studio, "en")
    row, key = api.studio.ops.keys.create("alice", label="farm | 1")
    table = keys_view.keys_markdown(api.studio, "zh")
    assert row.id in table and "alice" in table and key not in table and "farm \\| 1" in table

    def request(user=None, principal=None):
        return SimpleNamespace(username=user, request=SimpleNamespace(scope={PRINCIPAL: principal}))

    keys_view.require_admin(api.studio, request(principal=LOCAL))
    keys_view.require_admin(api.studio, request(user="boss"))  # admin: true in users/boss.yaml
    with pytest.raises(Unauthorized):
        keys_view.require_admin(api.studio, request(user="alice"))
    alice = api.studio.ops.keys.verify(key)
    with pytest.raises(Unauthorized):
        keys_view.require_admin(api.studio, request(principal=alice))
