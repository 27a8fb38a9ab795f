"""Panels that redraw from disk take their reads one at a time, in the order they were asked for.

With a queue per trigger (and the studio's default of 16 events at once), a read begun before a change on
disk could finish after a fresh one and draw the old state last. These check the built app's event table,
the one Gradio runs.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def demo(workspace):
    from app.server import create_app
    from app.settings import load_settings
    from app.studio import Studio

    return create_app(Studio(load_settings(workspace)), manage_studio=False).state.demo


def writers_of(demo, elem_id: str) -> list:
    return [fn for fn in demo.fns.values() if any(getattr(o, "elem_id", None) == elem_id for o in fn.outputs)]


def test_every_storyboard_redraw_waits_in_one_queue_one_at_a_time(demo):
    from app.ui.storyboard_view import BOARD_QUEUE

    redraws = writers_of(demo, "storyboard")
    triggers = {trigger for fn in redraws for _, trigger in fn.targets}
    assert {"change", "click", "tick", "load", "then"} <= triggers  # project, Refresh, timer, page, after a verb
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in redraws} == {
        (BOARD_QUEUE["concurrency_id"], 1)}


def test_each_project_panel_reads_one_at_a_time(demo):
    project = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "project-select")
    loads = [fn for fn in demo.fns.values() if any(t[0] == project._id and t[1] == "change" for t in fn.targets)]
    assert len(loads) >= 5
    assert all(fn.concurrency_limit == 1 for fn in loads), [(fn.name, fn.concurrency_limit) for fn in loads]
    assert len({fn.concurrency_id for fn in loads}) == len(loads)  # panels do not wait on each other


def test_every_plan_redraw_waits_in_one_queue(demo):
    redraws = writers_of(demo, "episode-plan")
    assert len(redraws) >= 3  # project, scene choice, a finished render
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in redraws} == {("project-plan", 1)}
