"""Per-user quotas and limits (seed 000's ``configs/users/{user_id}.yaml``), enforced in the job
service's own submit transaction.

``<workspace>/users/<user>.yaml``::

    admin: false
    quotas:
      images_per_day: 100
      videos_per_day: 10
      max_resolution: "1920x1080"
    limits:
      max_duration: 60      # seconds of one video
      max_frames: 1440      # frames of one video

``users/default.yaml`` applies to key users without a file of their own (not to the person at
the machine). A user with no file at all has no quotas.

``Admission`` is the job service's ``admission`` hook: it runs inside the ``BEGIN IMMEDIATE``
transaction that inserts the job row, so counting today's jobs and inserting the new one is one
atomic step — parallel submits cannot all see "9 used" and all get in.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from app.db import Job
from app.episode_steps import EPISODE
from core.errors import ConfigError, QuotaExceeded, pydantic_message

from .auth import LOCAL_USER, USER_NAME

RESOLUTION = r"^\d{2,5}[xX*]\d{2,5}$"
TIER = re.compile(r"^(\d{3,4})[pP]$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Quotas(_Strict):
    images_per_day: int | None = Field(None, ge=0)
    videos_per_day: int | None = Field(None, ge=0)
    max_resolution: str | None = Field(None, pattern=RESOLUTION)


class Limits(_Strict):
    max_duration: float | None = Field(None, gt=0)
    max_frames: int | None = Field(None, ge=1)
    max_resolution: str | None = Field(None, pattern=RESOLUTION)


class UserProfile(_Strict):
    admin: bool = False
    display_name: str | None = None
    quotas: Quotas = Field(default_factory=Quotas)
    limits: Limits = Field(default_factory=Limits)

    @property
    def max_resolution(self) -> str | None:
        return self.limits.max_resolution or self.quotas.max_resolution


class UserDirectory:
    """Reads ``users/*.yaml`` on demand, re-reading a file when it changes."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._cache: dict[Path, tuple[float, UserProfile]] = {}
        self._lock = threading.Lock()

    def _load(self, path: Path) -> UserProfile | None:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        with self._lock:
            hit = self._cache.get(path)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            profile = UserProfile.model_validate(data)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: not readable YAML ({exc}).", f"{path}：YAML 无法读取（{exc}）。") from exc
        except PydanticError as exc:
            en, zh = pydantic_message(exc)
            raise ConfigError(f"{path}: {en}", f"{path}：{zh}") from exc
        with self._lock:
            self._cache[path] = (mtime, profile)
        return profile

    def get(self, user: str | None) -> UserProfile | None:
        if not user or not USER_NAME.match(user):
            return None
        own = self._load(self.folder / f"{user}.yaml")
        if own is not None or user == LOCAL_USER:
            return own
        return self._load(self.folder / "default.yaml")

    def is_admin(self, user: str) -> bool:
        try:
            profile = self.get(user)
        except ConfigError:
            return False
        return bool(profile and profile.admin)


# --- reading sizes and lengths out of any engine's params --------------------------------
def _pair(text: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*(\d{2,5})\s*[xX*]\s*(\d{2,5})\s*", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def measure(params: dict) -> dict:
    """Best-effort frame size (long, short side), duration (s) and frame count of a request."""
    out: dict = {}
    w, h = params.get("width"), params.get("height")
    if isinstance(w, int) and isinstance(h, int):
        out["sides"] = (max(w, h), min(w, h))
    for key in ("size", "image_size"):
        if isinstance(params.get(key), str) and (pair := _pair(params[key])):
            out["sides"] = (max(pair), min(pair))
    res = params.get("resolution")
    if "sides" not in out and isinstance(res, str):
        if pair := _pair(res):
            out["sides"] = (max(pair), min(pair))
        elif m := TIER.match(res.strip()):
            short = int(m.group(1))
            out["sides"] = (None, short)
    fps = params.get("fps") if isinstance(params.get("fps"), (int, float)) and params.get("fps") > 0 else None
    frames = params.get("num_frames", params.get("frames"))
    if isinstance(frames, int) and frames > 0:
        out["frames"] = frames
        if fps:
            out["duration"] = frames / fps
    duration = params.get("duration")
    if isinstance(duration, (int, float)) and duration > 0:
        out["duration"] = float(duration)
        if "frames" not in out and fps:
            out["frames"] = int(round(duration * fps))
    return out


def units(engine_id: str, params: dict) -> int:
    """How many videos a request counts as: an episode's scenes each count (``scenes``: a count or ids)."""
    if engine_id != EPISODE:
        return 1
    scenes = (params or {}).get("scenes")
    n = len(scenes) if isinstance(scenes, list) else scenes
    return max(1, n) if isinstance(n, int) else 1


def day_start(now: float | None = None) -> float:
    """Local midnight today: quotas are per calendar day."""
    t = time.localtime(now if now is not None else time.time())
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


class Admission:
    """The job service's ``admission`` hook (see module docstring)."""

    def __init__(self, users: UserDirectory, engines: dict):
        self.users = users
        self.engines = engines

    def image_engines(self) -> list[str]:
        return [eid for eid, e in self.engines.items() if set(getattr(e, "tasks", ())) <= {"t2i"}]

    def is_image(self, engine_id: str) -> bool:
        return engine_id in self.image_engines()

    def used_today(self, user: str, images: bool) -> int:
        """Today's counted jobs; an episode (a seed 000 multi-scene video) counts one video per scene."""
        counted = ~((Job.status == "failed") | ((Job.status == "cancelled") & Job.started_at.is_null()))
        query = Job.select().where(Job.user == user, Job.created_at >= day_start(), Job.parent.is_null(), counted)
        engines = self.image_engines()
        query = query.where(Job.engine.in_(engines) if images else Job.engine.not_in(engines))
        if images:
            return query.count()
        plain = query.where(Job.engine != EPISODE).count()
        episodes = query.where(Job.engine == EPISODE).select(Job.params)
        return plain + sum(units(EPISODE, job.params) for job in episodes)

    def check_limits(self, profile: UserProfile, params: dict) -> None:
        m = measure(params)
        if profile.max_resolution and m.get("sides"):
            cap_long, cap_short = sorted(_pair(profile.max_resolution), reverse=True)
            long_side, short_side = m["sides"]
            if short_side > cap_short or (long_side is not None and long_side > cap_long):
                raise QuotaExceeded(f"Your limit is {profile.max_resolution}; this request is larger. "
                                    "Lower the resolution or ask the admin to raise max_resolution.",
                                    f"你的分辨率上限为 {profile.max_resolution}，本次请求超出。"
                                    "请降低分辨率或请管理员调整。")
        if profile.limits.max_duration and m.get("duration") and m["duration"] > profile.limits.max_duration + 1e-6:
            raise QuotaExceeded(f"Videos may last at most {profile.limits.max_duration:g} s for you "
                                f"(this one: {m['duration']:.1f} s).",
                                f"你的视频时长上限为 {profile.limits.max_duration:g} 秒"
                                f"（本次 {m['duration']:.1f} 秒）。")
        if profile.limits.max_frames and m.get("frames") and m["frames"] > profile.limits.max_frames:
            raise QuotaExceeded(f"Videos may have at most {profile.limits.max_frames} frames for you "
                                f"(this one: {m['frames']}).",
                                f"你的视频帧数上限为 {profile.limits.max_frames}（本次 {m['frames']}）。")

    def __call__(self, *, user: str | None, engine, params, parent: str | None = None, **_) -> None:
        profile = self.users.get(user)
        if profile is None:
            return
        params = params.model_dump() if hasattr(params, "model_dump") else dict(params or {})
        images = self.is_image(engine.id)
        if not images:
            self.check_limits(profile, params)
        elif profile.max_resolution:
            self.check_limits(UserProfile(quotas=Quotas(max_resolution=profile.max_resolution)), params)
        if parent is not None:
            return  # a part of an admitted whole (an episode's scene): counted with its parent
        cap = profile.quotas.images_per_day if images else profile.quotas.videos_per_day
        if cap is None:
            return
        used, need = self.used_today(user, images), units(engine.id, params)
        if used + need > cap:
            what_en, what_zh = ("images", "图片") if images else ("videos", "视频")
            more_en = f" This request needs {need} (one per scene)." if need > 1 else ""
            more_zh = f"本次请求需要 {need} 个（每个场景一个）。" if need > 1 else ""
            raise QuotaExceeded(f"Daily quota reached: {used} of {cap} {what_en} today.{more_en} It resets at "
                                "midnight; ask the admin to raise it in users/" + f"{user}.yaml.",
                                f"已达到每日配额：今天已用 {used}/{cap} 个{what_zh}。{more_zh}午夜重置；"
                                f"如需提高请联系管理员修改 users/{user}.yaml。", used=used, cap=cap)
