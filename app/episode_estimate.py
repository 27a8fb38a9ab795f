"""Before an episode renders: what each step will do and what the whole render costs.

``preview(episodes, project_id, principal, scenes=None, lang="en") -> dict``: the episode's plan with,
for every step, whether a finished job of the project already has the same inputs (``cached``: it
will be reused, no cost), whether it runs (``new``), or whether its inputs are known only after
another step ran (``after``: a clip from this scene's still that is not rendered yet, or a continued
scene whose previous clip will change). Identical requests (``from: <scene>``) count once. Each step
that runs carries ``app.estimate.estimate``; the totals add the cloud money and the local seconds
that are known, and say how many steps have no estimate yet.

The reuse test is the one the episode runner applies (``episode_steps.request_hash`` +
``first_match`` over the project's finished jobs, read in one query), so "cached" here means the runner will not send that step again.
"""

from __future__ import annotations

from core.errors import AppError
from profiles.plan import REUSE_ENGINE, STILL_PLACEHOLDER, last_frame_of

from .access import Principal
from .estimate import estimate


def _resolved(service, request: dict, scene_steps: dict, clips: dict) -> dict | None:
    """The request with its placeholder image replaced when the step it waits for is cached, else None."""
    from .episode_steps import last_frame_file

    image = request.get("image")
    if image == STILL_PLACEHOLDER:
        still = scene_steps.get("still")
        return {**request, "image": f"job:{still.id}"} if still is not None else None
    previous = last_frame_of(image)
    if previous is not None:
        clip = clips.get(previous)
        return {**request, "image": str(last_frame_file(service, clip))} if clip is not None else None
    return request


def preview(episodes, project_id: str, principal: Principal, scenes: list[str] | None = None,
            lang: str = "en") -> dict:
    from .episode_steps import finished_by_request, first_match, request_hash

    episodes.access.check_read(project_id, principal)
    service = episodes.service
    plan = episodes.plan(project_id, scenes)
    finished = finished_by_request(plan.project)
    guesses: dict = {}  # one estimate per engine and parameters (scenes differ by seed only)
    zh = lang == "zh"
    rows, seen = [], {}
    clips: dict = {}  # scene -> cached clip job (for the scenes continued from it)
    cny, seconds, unknown, runs = 0.0, 0.0, 0, 0
    for sp in plan.scenes:
        cached_steps: dict = {}
        for step in sp.steps:
            row = {"scene": sp.scene, "step": step.step, "engine": step.engine, "state": "new",
                   "job": None, "estimate": None, "note": ""}
            rows.append(row)
            if step.engine == REUSE_ENGINE:
                row.update(state="cached", job=step.request.get("reuse"),
                           note="沿用已完成的任务" if zh else "takes a finished job")
                continue
            request = _resolved(service, step.request, cached_steps, clips)
            if request is None:
                wait = last_frame_of(step.request.get("image"))
                row.update(state="after", note=(f"等场景 {wait} 的片段" if zh else f"after scene {wait}'s clip")
                           if wait else ("等本场景的静帧" if zh else "after this scene's still"))
            else:
                try:
                    digest = request_hash(service, request)
                except AppError:
                    digest = None
                if digest is not None and digest in seen:
                    row.update(state="shared", note=(f"与场景 {seen[digest]} 共用" if zh
                                                     else f"shared with scene {seen[digest]}"))
                    continue
                found = first_match(service, finished.get((step.engine, request["prompt"]), []), digest) \
                    if digest is not None else None
                if digest is not None:
                    seen[digest] = sp.scene
                if found is not None:
                    row.update(state="cached", job=found.id, note="已渲染，沿用" if zh else "rendered before: reused")
                    cached_steps[step.step] = found
                    if step.step == "clip":
                        clips[sp.scene] = found
                    continue
            engine = service.engines.get(step.engine)
            if engine is None:
                continue
            params = step.request.get("params") or {}
            key = (step.engine, repr(sorted((k, v) for k, v in params.items() if k != "seed")))
            guess = guesses.get(key) or guesses.setdefault(key, estimate(engine, params, lang))
            row["estimate"] = guess
            runs += 1
            if guess["cny"] is not None:
                cny += guess["cny"]
            elif guess["seconds"] is not None:
                seconds += guess["seconds"]
            else:
                unknown += 1
    return {"project": plan.project, "name": plan.name, "duration": round(plan.duration, 3),
            "scenes": [s.scene for s in plan.scenes], "notes": {s.scene: s.notes for s in plan.scenes if s.notes},
            "steps": rows, "runs": runs, "cny": round(cny, 2), "local_seconds": round(seconds, 1),
            "unknown": unknown}
