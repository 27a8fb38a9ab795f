"""From a project to the jobs that render it: which engine does what for each scene, with which
parameters. Everything is resolved and checked here, before any job exists, so a render that
cannot work is refused up front with a message naming the scene, the engine and the fix.

Per scene (in order of preference):

* a ``keyframe`` image            → clip from it (image-to-video)
* characters with a reference face → a still on the still engine (SDXL + InstantID keeps the face
                                    of the scene's first character that has one), then a clip from it
* otherwise                       → text-to-video (the characters' prompt fragments still apply)

The clip runs at the scene's duration: ``num_frames = duration × the engine's fps`` snapped to
what the engine accepts (Wan: 4k+1), or ``duration`` seconds for cloud engines (the vendor's
nearest supported length; the stitch trims or holds the last frame to the exact duration).

The pieces: ``plan_steps`` (the plan as data), ``plan_engines`` (choosing engines, fitting numbers
to their parameters), ``plan_audio`` (spoken lines, audio settings); this module plans the scenes
and the episode, and re-exports what callers use.
"""
from __future__ import annotations

import hashlib
import secrets

from core.errors import ProfileError, ValidationError
from profiles import timeline

from .plan_audio import audio_settings, check_speech_fits, plan_speech, speech_json
from .plan_engines import choose_clip_engine, choose_still_engine, still_params, usable, video_params
from .plan_steps import LAST_FRAME_PREFIX, STILL_PLACEHOLDER, EpisodePlan, ScenePlan, StepPlan, last_frame_of
from .project import PROJECT_FILE, Project

__all__ = ["REUSE_ENGINE", "STILL_PLACEHOLDER", "LAST_FRAME_PREFIX", "EpisodePlan", "ScenePlan", "StepPlan",
           "last_frame_of", "plan_episode", "plan_scene", "check_chains", "ask_for_last_frames", "scene_seed",
           "audio_settings", "check_speech_fits", "speech_json", "timeline"]


def scene_seed(project: Project, scene) -> int:
    if scene.seed is not None:
        return scene.seed
    if project.config.seed_policy == "random":
        return secrets.randbelow(2**31)
    digest = hashlib.sha256(f"{project.config.seed}:{scene.id}".encode()).hexdigest()
    return int(digest[:8], 16) % 2**31


# --- one scene -----------------------------------------------------------------------------
def plan_scene(project: Project, engines: dict, index: int, scene, check) -> ScenePlan:
    """``check(request, images)`` validates one job request completely (see episodes.py)."""
    cfg = project.config
    prompt, negative = project.composed(scene)
    seed = scene_seed(project, scene)
    what = f"Scene '{scene.id}'"
    notes: list[str] = []
    steps: list[StepPlan] = []
    if scene.from_:
        return _reused_scene(project, engines, index, scene, check, prompt, negative, seed)
    if scene.continue_:
        return _continued_scene(project, engines, index, scene, check, prompt, negative, seed)
    face_owner = next((c for c in scene.characters if project.faces(c)), None)
    keyframe = None
    if scene.keyframe:
        keyframe = project.asset(scene.keyframe)
        if not keyframe.is_file():
            raise ProfileError(
                f"{cfg.scene_profiles} → scenes[{index}].keyframe: assets/{scene.keyframe} does not exist. Fix: put "
                "the image there or remove the keyframe.",
                f"{cfg.scene_profiles} → scenes[{index}].keyframe：assets/{scene.keyframe} 不存在。请放入该图片或删除关键帧。",
                file=cfg.scene_profiles, field=f"scenes[{index}].keyframe")
    engine, where, task = choose_clip_engine(project, engines, index, scene,
                                             "i2v" if keyframe or face_owner else "t2v")
    first_frame = None  # (request value, stand-in file for checks)
    if task == "t2v" and (keyframe or face_owner):
        notes.append(f"{engine.id} makes text-to-video: the keyframe or the reference face is not used")
    elif keyframe is not None:
        first_frame = (str(keyframe), keyframe)
    elif face_owner is not None:
        still_engine, still_where = choose_still_engine(project, engines)
        usable(still_engine, still_where, f"{what} (character still)")
        face = project.faces(face_owner)[0]
        request = {"engine": still_engine.id, "prompt": prompt, "negative_prompt": negative, "project": project.id,
                   "params": still_params(still_engine, project, project.characters[face_owner], seed)}
        if "ref2v" in still_engine.tasks:
            request["reference_images"] = [str(face)]
        _checked(check, request, [("reference", face)], what, still_engine.id)
        steps.append(StepPlan("still", still_engine.id, request))
        first_frame = (STILL_PLACEHOLDER, face)
        if len(scene.characters) > 1:
            notes.append(f"the still keeps the face of {face_owner} (one face per still)")
    if first_frame is None:
        notes += [f"{cid} has no reference face: text-to-video (add one in {cfg.character_profiles} for the same "
                  "face in every scene)" for cid in scene.characters if not project.faces(cid)]
    usable(engine, where, what)
    params, _computed = video_params(engine, task, project, scene, seed)
    request = {"engine": engine.id, "prompt": prompt, "negative_prompt": negative, "project": project.id,
               "params": params}
    images = []
    if first_frame:
        request["image"] = first_frame[0]
        images = [("first_frame", first_frame[1])]
    _clip_step(engine, task, project, scene, seed, check, request, images, what, notes, steps)
    return _finish_scene(project, engines, index, scene, check, seed, task, prompt, negative, steps, notes)


def _clip_step(engine, task, project, scene, seed, check, request, images, what, notes, steps) -> None:
    params = request["params"]
    computed = set(video_params(engine, task, project, scene, seed)[1])
    try:
        check(request, images)
    except ValidationError:
        if "duration" not in computed:
            _checked(check, request, images, what, engine.id)  # raises, naming the scene
        request["params"] = {k: v for k, v in params.items() if k != "duration"}
        _checked(check, request, images, what, engine.id)
        notes.append(f"{engine.id} chooses the clip length; it is trimmed or held to {scene.duration:g} s")
    steps.append(StepPlan("clip", engine.id, request))


def _finish_scene(project, engines, index, scene, check, seed, task, prompt, negative, steps, notes) -> ScenePlan:
    speech, speech_steps = plan_speech(project, engines, scene, check)
    transition = scene.transition or project.config.transition
    return ScenePlan(scene.id, scene.title, scene.duration, seed, task, prompt, negative,
                     "cut" if index == 0 else transition, steps + speech_steps, notes, speech)


REUSE_ENGINE = "reuse"  # the engine of a step that takes a finished job's output instead of running one


def _reused_scene(project: Project, engines: dict, index: int, scene, check, prompt, negative, seed,
                  seen: tuple = ()) -> ScenePlan:
    """``from: <scene id>``: the steps of that scene (identical requests, so one job serves both);
    ``from: job:<id>``: that finished job's video (checked when the episode runs, with the owner's rights)."""
    cfg = project.config
    where = f"{cfg.scene_profiles} → scenes[{index}].from"
    if scene.continue_ or scene.keyframe:
        raise ProfileError(f"{where}: scene '{scene.id}' reuses a clip, so 'continue' and 'keyframe' have no effect. "
                           "Fix: remove them or remove 'from'.",
                           f"{where}：场景“{scene.id}”复用已有片段，“continue”和“keyframe”不起作用。请删除它们或删除 “from”。",
                           file=cfg.scene_profiles, field=f"scenes[{index}].from")
    if scene.from_.startswith("job:"):
        steps = [StepPlan("clip", REUSE_ENGINE, {"engine": REUSE_ENGINE, "reuse": scene.from_[4:],
                                                 "prompt": prompt, "project": project.id})]
        notes = [f"reuses the video of job {scene.from_[4:]} (nothing is rendered)"]
        return _finish_scene(project, engines, index, scene, check, seed, "reuse", prompt, negative, steps, notes)
    target = next((i for i, s in enumerate(project.scenes) if s.id == scene.from_), None)
    if target is None or scene.from_ == scene.id or scene.from_ in seen:
        known = ", ".join(s.id for s in project.scenes if s.id != scene.id)
        why = "is this scene itself or a loop" if target is not None else "is not a scene of this project"
        raise ProfileError(f"{where}: '{scene.from_}' {why}. Fix: name another scene ({known}) or job:<task id>.",
                           f"{where}：“{scene.from_}”无效（不是本项目的其他场景，或形成循环）。请填写其他场景（{known}）或 job:<任务ID>。",
                           file=cfg.scene_profiles, field=f"scenes[{index}].from")
    source = project.scenes[target]
    if source.from_:
        inner = _reused_scene(project, engines, target, source, check, prompt, negative, seed, (*seen, scene.id))
    else:
        inner = plan_scene(project, engines, target, source, check)
    steps = [st for st in inner.steps if not st.step.startswith("tts")]
    notes = [f"reuses the clip of scene {source.id} (one job serves both; it is trimmed or held to "
             f"{scene.duration:g} s)"]
    return _finish_scene(project, engines, index, scene, check, inner.seed, inner.task, inner.prompt,
                         inner.negative_prompt, steps, notes)


def _continued_scene(project: Project, engines: dict, index: int, scene, check, prompt, negative, seed) -> ScenePlan:
    """``continue: true``: an image-to-video clip from the last frame of the previous scene's clip."""
    cfg = project.config
    where = f"{cfg.scene_profiles} → scenes[{index}].continue"
    if index == 0:
        raise ProfileError(f"{where}: the first scene has no scene before it to continue from. Fix: remove "
                           "'continue: true' from it.",
                           f"{where}：第一个场景之前没有可接续的场景。请删除它的 “continue: true”。",
                           file=cfg.scene_profiles, field=f"scenes[{index}].continue")
    if scene.keyframe:
        raise ProfileError(f"{where}: scene '{scene.id}' has a keyframe and 'continue: true'; a clip has one first "
                           "frame. Fix: keep one of them.",
                           f"{where}：场景“{scene.id}”同时有关键帧和 “continue: true”，片段只能有一个首帧。请保留其一。",
                           file=cfg.scene_profiles, field=f"scenes[{index}].continue")
    previous = project.scenes[index - 1].id
    engine, engine_where, task = choose_clip_engine(project, engines, index, scene, "i2v")
    if task != "i2v":
        raise ValidationError(
            f"Scene '{scene.id}' continues the previous scene, which needs an image-to-video engine; {engine.id} "
            f"does {', '.join(engine.tasks)}. Fix: choose an i2v engine in {engine_where}.",
            f"场景“{scene.id}”接续上一场景，需要图生视频引擎；{engine.id} 支持 {', '.join(engine.tasks)}。"
            f"请在 {engine_where} 中换用图生视频引擎。")
    usable(engine, engine_where, f"Scene '{scene.id}'")
    params, _computed = video_params(engine, task, project, scene, seed)
    request = {"engine": engine.id, "prompt": prompt, "negative_prompt": negative, "project": project.id,
               "params": params, "image": f"{LAST_FRAME_PREFIX}{previous}"}
    # the frame does not exist yet: engines check that a first frame is given (and its file size), not its pixels
    images = [("first_frame", project.dir / PROJECT_FILE)]
    notes = [f"starts from the last frame of scene {previous}'s clip: it re-renders whenever {previous} does"]
    steps: list[StepPlan] = []
    _clip_step(engine, task, project, scene, seed, check, request, images, f"Scene '{scene.id}'", notes, steps)
    return _finish_scene(project, engines, index, scene, check, seed, task, prompt, negative, steps, notes)


def _checked(check, request: dict, images: list, what: str, engine_id: str) -> None:
    try:
        check(request, images)
    except ValidationError as exc:
        raise ValidationError(
            f"{what} on {engine_id}: {exc.en.rstrip('.')}. Fix: change the scene (prompt, duration, params) or "
            f"engine_params.{engine_id} in {PROJECT_FILE}.",
            f"{what.replace('Scene', '场景')}（{engine_id}）：{exc.zh} 请修改该场景或 {PROJECT_FILE} 中的 "
            f"engine_params.{engine_id}。") from None


def plan_episode(project: Project, engines: dict, check, scene_ids: list[str] | None = None,
                 name: str | None = None) -> EpisodePlan:
    """The whole render, checked. ``scene_ids`` renders only those scenes (in project order)."""
    if not project.scenes:
        raise ValidationError(f"Project '{project.id}' has no scenes yet: add one first.",
                              f"项目“{project.id}”还没有场景，请先添加。")
    wanted = set(scene_ids or [s.id for s in project.scenes])
    for sid in wanted:
        project.scene(sid)  # NotFound names the known scenes
    plans = []
    for index, scene in enumerate(project.scenes):
        if scene.id not in wanted:
            continue
        plans.append(plan_scene(project, engines, index, scene, check))
    check_chains(plans)
    ask_for_last_frames(plans, engines)
    plans[0].transition = "cut"
    cfg = project.config
    width, height = cfg.size
    check_speech_fits(plans, cfg)
    return EpisodePlan(project.id, cfg.title, name or "episode", cfg.fps, width, height, cfg.upscale,
                       cfg.transition_duration, plans, audio_settings(project))


def check_chains(plans: list[ScenePlan]) -> None:
    """A clip that starts from another scene's last frame needs that scene in the same render."""
    planned = {p.scene for p in plans}
    for p in plans:
        for step in p.steps:
            wanted = last_frame_of(step.request.get("image"))
            if wanted is not None and wanted not in planned:
                raise ValidationError(
                    f"Scene '{p.scene}' continues from the last frame of scene '{wanted}', which is not in this "
                    f"render. Fix: render '{wanted}' together with '{p.scene}' (finished clips are reused).",
                    f"场景“{p.scene}”接续场景“{wanted}”的最后一帧，但“{wanted}”不在本次渲染中。"
                    f"请把“{wanted}”与“{p.scene}”一起渲染（已完成的片段会被复用）。")


def ask_for_last_frames(plans: list[ScenePlan], engines: dict) -> None:
    """A clip that a continued scene starts from asks its engine for the last frame, when the engine can
    return one (``engine.last_frame_params(params)``, e.g. Seedance's ``return_last_frame``): the next
    clip then starts from the provider's own frame instead of one decoded from the MP4. A value the
    project sets itself is kept."""
    wanted = {last_frame_of(step.request.get("image")) for p in plans for step in p.steps} - {None}
    for p in plans:
        for step in p.steps:
            if step.step != "clip" or p.scene not in wanted:
                continue
            engine = engines.get(step.engine)
            extra = engine.last_frame_params(dict(step.request.get("params") or {})) if engine is not None else None
            if not extra:
                continue
            before = dict(step.request)
            for other in plans:  # ``from: <scene>`` copies keep one request for both scenes
                for twin in other.steps:
                    if twin.step == "clip" and twin.request == before:
                        twin.request["params"] = {**(twin.request.get("params") or {}), **extra}
            p.notes.append(f"{step.engine} also returns the clip's last frame, for the scene that continues from it")
