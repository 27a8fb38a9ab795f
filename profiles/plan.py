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
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import asdict, dataclass, field

from pydantic import ValidationError as PydanticError

from core.errors import NotAvailable, ProfileError, ValidationError

from profiles import timeline
from profiles.timeline import SceneInput, Utterance, estimate_seconds

from .project import PROJECT_FILE, Project
from .voices import speech_lines, speech_request, voice_source

STILL_PLACEHOLDER = "@still"  # the clip's first frame: the still job's image, known once it ran
LAST_FRAME_PREFIX = "@last_of:"  # the clip's first frame: the last frame of that scene's clip (``continue: true``)


def last_frame_of(value) -> str | None:
    """The scene whose clip's last frame a request image waits for, or None."""
    return value[len(LAST_FRAME_PREFIX):] if isinstance(value, str) and value.startswith(LAST_FRAME_PREFIX) else None
TASK_DEFAULTS = {("dashscope", "i2v"): {"model": "wanx2.1-i2v-turbo"}}  # the engine default is t2v-only


@dataclass
class StepPlan:
    step: str  # still | clip | tts<line index>
    engine: str
    request: dict  # a JobService.submit request (the clip's image may be STILL_PLACEHOLDER)


@dataclass
class ScenePlan:
    scene: str
    title: str
    duration: float
    seed: int
    task: str  # t2v | i2v
    prompt: str
    negative_prompt: str
    transition: str  # into this scene: cut | crossfade
    steps: list[StepPlan]
    notes: list[str] = field(default_factory=list)
    speech: list[dict] = field(default_factory=list)  # profiles.voices.SpeechLine as JSON, + "estimate" (s)


@dataclass
class EpisodePlan:
    project: str
    title: str
    name: str
    fps: int
    width: int
    height: int
    upscale: bool
    transition_duration: float
    scenes: list[ScenePlan]
    audio: dict = field(default_factory=dict)  # timing, padding, subtitles, style, music (project-relative), mix

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "EpisodePlan":
        scenes = [ScenePlan(**{**s, "steps": [StepPlan(**st) for st in s["steps"]]}) for s in data["scenes"]]
        return cls(**{**data, "scenes": scenes})

    @property
    def duration(self) -> float:
        """Seconds of the episode; with ``timing: voice``, scenes lengthened to their estimated speech."""
        if (self.audio or {}).get("timing", "voice") == "voice" and any(s.speech for s in self.scenes):
            scenes = [SceneInput(s.scene, s.duration, s.transition,
                                 tuple(Utterance(None, line["estimate"], at=line["at"]) for line in s.speech))
                      for s in self.scenes]
            return timeline.plan(scenes, fps=self.fps, fade=self.transition_duration, timing="voice",
                                 padding=self.audio.get("speech_padding", 0.3)).duration
        cuts = sum(s.duration for s in self.scenes)
        fades = sum(min(self.transition_duration, s.duration / 2) for s in self.scenes[1:] if s.transition == "crossfade")
        return cuts - fades


def scene_seed(project: Project, scene) -> int:
    if scene.seed is not None:
        return scene.seed
    if project.config.seed_policy == "random":
        return secrets.randbelow(2**31)
    digest = hashlib.sha256(f"{project.config.seed}:{scene.id}".encode()).hexdigest()
    return int(digest[:8], 16) % 2**31


# --- fitting numbers to an engine's Params -------------------------------------------------
def _bounds(engine, name: str) -> dict:
    f = engine.Params.model_fields.get(name)
    out: dict = {}
    for meta in getattr(f, "metadata", ()) if f else ():
        for attr in ("ge", "gt", "le", "lt", "multiple_of"):
            if getattr(meta, attr, None) is not None:
                out[attr] = getattr(meta, attr)
    return out


def fit_int(engine, name: str, value: float) -> int:
    b = _bounds(engine, name)
    step = int(b.get("multiple_of") or 1)
    v = int(round(value / step) * step)
    lo, hi = b.get("ge", b.get("gt")), b.get("le", b.get("lt"))
    if lo is not None:
        v = max(v, int(math.ceil(lo / step) * step))
    if hi is not None:
        v = min(v, int(hi // step * step))
    return v


def _accepts(engine, name: str, value) -> bool:
    try:
        engine.Params.model_validate({name: value})
    except PydanticError as exc:
        return not any(e.get("loc", ("",))[0] == name for e in exc.errors())
    return True


def fit_frames(engine, wanted: int) -> int:
    """The frame count nearest ``wanted`` (preferring more) that the engine accepts (Wan: 4k+1)."""
    base = fit_int(engine, "num_frames", wanted)
    for delta in (0, 1, 2, 3, 4, -1, -2, -3, -4, 5, 6, 7, 8):
        if base + delta >= 1 and _accepts(engine, "num_frames", base + delta):
            return base + delta
    return base


def engine_fps(engine, params: dict, project_fps: int) -> int:
    if isinstance(params.get("fps"), int):
        return params["fps"]
    f = engine.Params.model_fields.get("fps")
    return f.default if f is not None and isinstance(f.default, int) else project_fps


def video_params(engine, task: str, project: Project, scene, seed: int) -> tuple[dict, set[str]]:
    """(params, names we computed) for a clip; the user's engine_params and scene params win."""
    cfg = project.config
    user = {**TASK_DEFAULTS.get((engine.id, task), {}), **cfg.engine_params.get(engine.id, {}),
            **cfg.engine_params.get(f"{engine.id}:{task}", {}), **scene.params}
    fields = engine.Params.model_fields
    computed: dict = {}
    width, height = cfg.size
    if "width" in fields and "height" in fields:
        computed["width"], computed["height"] = fit_int(engine, "width", width), fit_int(engine, "height", height)
    if "num_frames" in fields:
        computed["num_frames"] = fit_frames(engine, math.ceil(scene.duration * engine_fps(engine, user, cfg.fps)))
    elif "duration" in fields:
        computed["duration"] = fit_int(engine, "duration", math.ceil(scene.duration))
    if "seed" in fields:
        computed["seed"] = seed
    return {**computed, **user}, set(computed) - set(user)


def still_params(engine, project: Project, character, seed: int) -> dict:
    cfg = project.config
    fields = engine.Params.model_fields
    params: dict = {}
    width, height = cfg.size
    if "width" in fields and "height" in fields:
        params["width"], params["height"] = fit_int(engine, "width", width), fit_int(engine, "height", height)
    for name in ("identity_strength", "ip_adapter_scale"):
        if name in fields and character is not None:
            params[name] = character.instantid_strength
    if "num_images" in fields:
        params["num_images"] = 1
    if "seed" in fields:
        params["seed"] = seed
    return {**params, **cfg.engine_params.get(engine.id, {})}


# --- choosing engines ----------------------------------------------------------------------
def _video(engine) -> bool:
    return bool({"t2v", "i2v"} & set(engine.tasks))


def _lookup(engines: dict, engine_id: str, where: str):
    engine = engines.get(engine_id)
    if engine is None:
        known = ", ".join(sorted(engines))
        file, _, fld = where.partition(" ")
        raise ProfileError(f"{file} → {fld}: unknown engine '{engine_id}'. Fix: use one of: {known}.",
                           f"{file} → {fld}：未知引擎“{engine_id}”。可用：{known}。", file=file, field=fld)
    return engine


def _usable(engine, where: str, what: str, what_zh: str | None = None) -> None:
    ok, reason = engine.available()
    if not ok:
        raise NotAvailable(
            f"{what} needs the engine {engine.id}, which is not available: {reason} Fix: make it available "
            f"(Settings shows what it needs) or choose another engine in {where}.",
            f"{what_zh or what.replace('Scene', '场景')} 需要引擎 {engine.id}，但它不可用：{getattr(reason, 'zh', reason)} "
            f"请先使其可用（见“设置”），或在 {where} 中换一个引擎。")  # a reason with .zh: engines.base.reason_text


def choose_clip_engine(project: Project, engines: dict, index: int, scene, task: str):
    """(engine, where it was chosen, task) for the scene's clip; may turn i2v into t2v."""
    cfg = project.config
    scenes_file = cfg.scene_profiles
    if scene.engine:
        where = f"{scenes_file} scenes[{index}].engine"
        engine = _lookup(engines, scene.engine, where)
        if task in engine.tasks:
            return engine, where, task
        if task == "i2v" and "t2v" in engine.tasks:
            return engine, where, "t2v"  # the user picked a text-to-video engine for this scene
        raise ValidationError(
            f"Scene '{scene.id}': {engine.id} cannot make this clip ({task}; it does {', '.join(engine.tasks)}). "
            f"Fix: give the scene a keyframe or a character with a reference face, or choose an engine that does "
            f"{task} in {where}.",
            f"场景“{scene.id}”：{engine.id} 无法生成此片段（需要 {task}，它支持 {', '.join(engine.tasks)}）。"
            f"请为场景添加关键帧或带参考人脸的角色，或在 {where} 中换用支持 {task} 的引擎。")
    if cfg.default_engine:
        where = f"{PROJECT_FILE} default_engine"
        engine = _lookup(engines, cfg.default_engine, where)
        if task in engine.tasks:
            return engine, where, task
    field_name = "i2v_engine" if task == "i2v" else "t2v_engine"
    where = f"{PROJECT_FILE} {field_name}"
    engine = _lookup(engines, getattr(cfg, field_name), where)
    if task not in engine.tasks:
        raise ProfileError(f"{PROJECT_FILE} → {field_name}: {engine.id} does not do {task}. Fix: choose an engine "
                           f"that does.", f"{PROJECT_FILE} → {field_name}：{engine.id} 不支持 {task}。请换一个引擎。",
                           file=PROJECT_FILE, field=field_name)
    return engine, where, task


def choose_still_engine(project: Project, engines: dict):
    cfg = project.config
    if cfg.default_engine and cfg.default_engine in engines and not _video(engines[cfg.default_engine]):
        return engines[cfg.default_engine], f"{PROJECT_FILE} default_engine"
    where = f"{PROJECT_FILE} still_engine"
    return _lookup(engines, cfg.still_engine, where), where


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
        _usable(still_engine, still_where, f"{what} (character still)")
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
    _usable(engine, where, what)
    params, computed = video_params(engine, task, project, scene, seed)
    request = {"engine": engine.id, "prompt": prompt, "negative_prompt": negative, "project": project.id,
               "params": params}
    images = []
    if first_frame:
        request["image"] = first_frame[0]
        images = [("first_frame", first_frame[1])]
    try:
        check(request, images)
    except ValidationError:
        if "duration" not in computed:
            _checked(check, request, images, what, engine.id)  # raises, naming the scene
        request["params"] = {k: v for k, v in params.items() if k != "duration"}
        _checked(check, request, images, what, engine.id)
        notes.append(f"{engine.id} chooses the clip length; it is trimmed or held to {scene.duration:g} s")
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
    _usable(engine, engine_where, f"Scene '{scene.id}'")
    params, _computed = video_params(engine, task, project, scene, seed)
    request = {"engine": engine.id, "prompt": prompt, "negative_prompt": negative, "project": project.id,
               "params": params, "image": f"{LAST_FRAME_PREFIX}{previous}"}
    # the frame does not exist yet: engines check that a first frame is given (and its file size), not its pixels
    images = [("first_frame", project.dir / PROJECT_FILE)]
    notes = [f"starts from the last frame of scene {previous}'s clip: it re-renders whenever {previous} does"]
    steps: list[StepPlan] = []
    _clip_step(engine, task, project, scene, seed, check, request, images, f"Scene '{scene.id}'", notes, steps)
    return _finish_scene(project, engines, index, scene, check, seed, task, prompt, negative, steps, notes)


def plan_speech(project: Project, engines: dict, scene, check) -> tuple[list[dict], list[StepPlan]]:
    """The scene's lines (``speech_json``) and one ``tts<index>`` step per line, each voice engine
    checked now: unknown, not a speech engine, not available, or a line it cannot say is refused here."""
    speech, steps = [], []
    for line in speech_lines(project, scene):
        where = voice_source(project, line)
        who = "the narration" if not line.character else f"line {line.index} ({line.speaker})"
        who_zh = "旁白" if not line.character else f"第 {line.index} 句（{line.speaker}）"
        engine = _lookup(engines, line.voice.engine, where)
        if "tts" not in engine.tasks:
            file, _, fld = where.partition(" ")
            raise ProfileError(f"{file} → {fld}: {engine.id} is not a speech engine. Fix: use a text-to-speech engine "
                               "(local-tts, dashscope-tts, tencent-tts).",
                               f"{file} → {fld}：{engine.id} 不是语音引擎。请使用语音合成引擎（local-tts、dashscope-tts、"
                               "tencent-tts）。", file=file, field=fld)
        _usable(engine, where, f"Scene '{scene.id}' ({who})", f"场景“{scene.id}”的{who_zh}")
        request = speech_request(project.id, line)
        try:
            check(request, [])
        except ValidationError as exc:
            raise ValidationError(
                f"Scene '{scene.id}', {who} on {engine.id}: {exc.en.rstrip('.')}. Fix: change the text in "
                f"{project.config.scene_profiles} or the voice in {where.replace(' ', ' → ', 1)}.",
                f"场景“{scene.id}”{who_zh}（{engine.id}）：{exc.zh} 请修改 {project.config.scene_profiles} 中的文字，"
                f"或 {where.replace(' ', ' → ', 1)} 中的声音。") from None
        speech.append(speech_json(line))
        steps.append(StepPlan(f"tts{line.index}", engine.id, request))
    return speech, steps


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


# --- speech, subtitles, music ----------------------------------------------------------------
def speech_json(line) -> dict:
    return {"index": line.index, "speaker": line.speaker, "character": line.character, "text": line.text,
            "voice": line.voice.model_dump(mode="json"), "at": line.at,
            "estimate": round(estimate_seconds(line.text, line.voice.speed), 3)}


def audio_settings(project: Project) -> dict:
    cfg = project.config
    music = None
    if cfg.music:
        path = project.asset(cfg.music)
        if not path.is_file():
            raise ProfileError(f"{PROJECT_FILE} → music: assets/{cfg.music} does not exist. Fix: put the file there "
                               "(or upload it in the Projects tab) or remove music.",
                               f"{PROJECT_FILE} → music：assets/{cfg.music} 不存在。请放入该文件或删除 music。",
                               file=PROJECT_FILE, field="music")
        music = f"assets/{cfg.music}"
    return {"timing": cfg.timing, "speech_padding": cfg.speech_padding, "subtitles": cfg.subtitles,
            "subtitle_style": cfg.subtitle_style.model_dump(mode="json"), "music": music,
            "music_volume": cfg.music_volume, "ducking": cfg.ducking, "clip_audio": cfg.clip_audio}


def check_speech_fits(plans: list[ScenePlan], cfg) -> None:
    """With ``timing: fixed``, refuse before anything runs when the (estimated) speech cannot fit a scene."""
    if cfg.timing != "fixed" or not any(sp.speech for sp in plans):
        return
    scenes = [SceneInput(sp.scene, sp.duration, sp.transition,
                         tuple(Utterance(None, line["estimate"], at=line["at"]) for line in sp.speech)) for sp in plans]
    timeline.plan(scenes, fps=cfg.fps, fade=cfg.transition_duration, timing="fixed", padding=cfg.speech_padding)
