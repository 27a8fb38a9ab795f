"""app/ui/session_state.py: a new Gradio session computes its block configs only when asked, with the
values Gradio's own SessionState computes at once (checked against that class, so an upgrade that
changes it fails here)."""

from __future__ import annotations

import gradio as gr
from gradio import state_holder

from app.ui import session_state


def blocks():
    with gr.Blocks() as demo:
        name = gr.Textbox(label="name", value="仙")
        count = gr.Number(value=3)
        out = gr.JSON()
        gr.State(value={"k": 1})
        gr.Button("go").click(lambda a, b: {"a": a, "b": b}, [name, count], out)
    return demo, name


def test_lazy_sessions_match_gradios_own():
    session_state.install()
    lazy_cls = state_holder.SessionState
    original = next(c for c in lazy_cls.__mro__[1:] if c.__name__ == "SessionState")
    demo, name = blocks()
    real, lazy = original(demo), lazy_cls(demo)
    assert set(vars(real)) == set(vars(lazy))  # the same attributes (a Gradio upgrade that adds one fails)
    assert not dict.__len__(lazy.config_values)  # nothing computed yet
    assert lazy.config_values[name._id] == real.config_values[name._id]  # one block, on demand
    assert name._id in lazy.config_values and list(lazy.config_values) == list(real.config_values)
    assert dict(lazy.config_values.items()) == real.config_values
    assert list(lazy.components) == list(real.components)


def test_a_lazy_session_takes_updates_like_gradios():
    session_state.install()
    demo, name = blocks()
    lazy = state_holder.SessionState(demo)
    lazy._update_value_in_config(name._id, "剑")
    assert lazy.config_values[name._id]["props"]["value"] == "剑"
    lazy[name._id] = name
    assert lazy.config_values[name._id]["props"]["value"] == "仙"  # recomputed from the block
    assert lazy.get(10**9) is None and 10**9 not in lazy.config_values


def test_the_studio_api_answers_through_a_lazy_session(workspace):
    from fastapi.testclient import TestClient

    from app.server import create_app
    from app.settings import load_settings
    from app.studio import Studio

    studio = Studio(load_settings(workspace))
    app = create_app(studio)
    with TestClient(app) as http:
        event = http.post("/gradio_api/call/engines", json={"data": []})
        assert event.status_code == 200, event.text
        answer = http.get(f"/gradio_api/call/engines/{event.json()['event_id']}")
        assert "event: complete" in answer.text and "dashscope" in answer.text
    assert state_holder.SessionState.__name__ == "LazySessionState"
