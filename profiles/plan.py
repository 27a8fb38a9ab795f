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
from .voices import speech_lines

STILL_PLACEHOLDER = "@still"  # the clip's first frame: the still job's image, known once it ran
TASK_DEFAULTS = {("dashscope", "i2v"): {"model": "wanx2.1-i2v-turbo"}}  # the engine default is t2v-only


@dataclass
class StepPlan:
    step: str  # still | clip
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


def _usable(engine, where: str, what: str) -> None:
    ok, reason = engine.available()
    if not ok:
        raise NotAvailable(
            f"{what} needs the engine {engine.id}, which is not available: {reason} Fix: make it available "
            f"(Settings shows what it needs) or choose another engine in {where}.",
            f"{what.replace('Scene', '场景')} 需要引擎 {engine.id}，但它不可用：{reason} 请先使其可用（见“设置”），或在 {where} 中换一个引擎。")


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
    steps.append(StepPlan("clip", engine.id, request))
    transition = scene.transition or cfg.transition
    return ScenePlan(scene.id, scene.title, scene.duration, seed, task, prompt, negative,
                     "cut" if index == 0 else transition, steps, notes)


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
    plans[0].transition = "cut"
    cfg = project.config
    width, height = cfg.size
    for sp in plans:
        sp.speech = [speech_json(line) for line in speech_lines(project, project.scene(sp.scene))]
    check_speech_fits(plans, cfg)
    return EpisodePlan(project.id, cfg.title, name or "episode", cfg.fps, width, height, cfg.upscale,
                       cfg.transition_duration, plans, audio_settings(project))


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
