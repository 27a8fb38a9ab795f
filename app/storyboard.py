"""The storyboard of a project: its scenes and characters with their latest stills, clips and render
status, read from the project files and the job rows (nothing is cached: a change on disk shows on the
next read); and the scene edits the storyboard offers (move, insert, split, merge, re-roll).
"""

from __future__ import annotations

import base64
import io
import json
import re
import secrets

from .access import Principal
from .db import Job
from core.errors import AppError, ValidationError

ACTIVE = ("queued", "running")


def latest_steps(episodes, project_id: str, principal: Principal, limit: int = 20) -> dict:
    """scene id -> {"still": Job|None, "clip": Job|None, "episode": id}, from the caller's newest episodes."""
    out: dict = {}
    for ep in episodes.episodes(project_id, principal, limit=limit):
        scenes = ((ep.info or {}).get("episode") or {}).get("scenes") or {}
        for sid in (ep.params or {}).get("scenes", []):
            if sid in out:
                continue
            records = scenes.get(sid) or {}
            if not records and ep.status not in ACTIVE:
                continue
            jobs = {step: Job.get_or_none(Job.id == records[step]["job"]) if records.get(step) else None
                    for step in ("still", "clip")}
            out[sid] = {**jobs, "episode": ep.id, "episode_status": ep.status}
    return out


def _face_uri(path, size: int = 96) -> str | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    except Exception:  # noqa: BLE001 - a broken image shows as no face
        return None


def _job_view(job: Job | None) -> dict | None:
    if job is None:
        return None
    first = (job.outputs or [{}])[0]
    return {"id": job.id, "engine": job.engine, "status": job.status, "progress": job.progress or 0.0,
            "file": first.get("file"), "kind": first.get("kind"), "thumbnail": first.get("thumbnail"),
            "error": job.error, "error_zh": job.error_zh}


def storyboard(episodes, project_id: str, principal: Principal) -> dict:
    """Everything the storyboard view shows, as plain data (also the ``/storyboard`` endpoint's answer)."""
    episodes.access.check_read(project_id, principal)
    project = episodes.store.get(project_id)
    plan, plan_error = None, None
    try:
        plan = episodes.plan(project_id)
    except AppError as exc:
        plan_error = {"en": exc.en, "zh": exc.zh}
    planned = {s.scene: s for s in plan.scenes} if plan else {}
    steps = latest_steps(episodes, project_id, principal)
    scenes, start = [], 0.0
    for scene in project.scenes:
        sp = planned.get(scene.id)
        found = steps.get(scene.id, {})
        clip, still = _job_view(found.get("clip")), _job_view(found.get("still"))
        status = (clip or {}).get("status") or (still or {}).get("status")
        if status is None and found.get("episode_status") in ACTIVE:
            status = "queued"
        if status is None and found.get("episode_status") in ("failed", "cancelled"):
            status = found["episode_status"]
        scenes.append({
            "id": scene.id, "title": scene.title, "prompt": scene.prompt, "narration": scene.narration,
            "lines": [{"character": ln.character, "text": ln.text} for ln in scene.lines],
            "characters": list(scene.characters), "duration": scene.duration, "start": round(start, 3),
            "engine": next((st.engine for st in sp.steps if st.step == "clip"), None) if sp else scene.engine,
            "steps": [st.engine for st in sp.steps if not st.step.startswith("tts")] if sp else [],
            "notes": sp.notes if sp else [], "continue": scene.continue_, "from": scene.from_,
            "status": status or "none", "still": still, "clip": clip, "episode": found.get("episode")})
        start += scene.duration
    characters = []
    for cid, ch in project.characters.items():
        faces = project.faces(cid)
        characters.append({"id": cid, "name": ch.name, "prompt": ch.prompt,
                           "face": _face_uri(faces[0]) if faces else None,
                           "reference": ch.reference_images[0] if ch.reference_images else None,
                           "voice": ch.voice.model_dump(mode="json") if ch.voice else None,
                           "scenes": [s.id for s in project.scenes if cid in s.characters]})
    total = plan.duration if plan else sum(s.duration for s in project.scenes)
    return {"project": project_id, "title": project.config.title, "scenes": scenes, "characters": characters,
            "duration": round(total, 3), "plan_error": plan_error,
            "active": any(s["status"] in ACTIVE for s in scenes)}


# --- scene edits ---------------------------------------------------------------------------------
def _index(scenes: list, sid: str) -> int:
    for i, s in enumerate(scenes):
        if s["id"] == sid:
            return i
    raise ValidationError(f"No scene '{sid}' in this project.", f"项目中没有场景“{sid}”。")


def _new_id(scenes: list, base: str) -> str:
    used = {s["id"] for s in scenes}
    stem = re.sub(r"-\d+$", "", base)[:56] or "scene"
    n = 2
    while f"{stem}-{n}" in used:
        n += 1
    return f"{stem}-{n}"


def _halves(text: str) -> tuple[str, str]:
    parts = re.split(r"(?<=[。！？!?；;…])|(?<=\.)\s+", text or "")
    parts = [p for p in parts if p and p.strip()]
    if len(parts) < 2:
        return text or "", ""
    total, acc = sum(len(p) for p in parts), 0
    for i, p in enumerate(parts):
        acc += len(p)
        if acc >= total / 2:
            cut = min(i + 1, len(parts) - 1)
            return "".join(parts[:cut]).strip(), "".join(parts[cut:]).strip()
    return text, ""


def edit(store, project_id: str, verb: str, sid: str) -> str:
    """One storyboard edit of scene ``sid``; returns the id of the scene to show selected."""
    result = {"id": sid}

    def change(scenes: list) -> list:
        i = _index(scenes, sid)
        if verb in ("up", "down"):
            j = i - 1 if verb == "up" else i + 1
            if 0 <= j < len(scenes):
                scenes[i], scenes[j] = scenes[j], scenes[i]
        elif verb == "insert":
            new = {"id": _new_id(scenes, sid), "prompt": scenes[i]["prompt"], "duration": 5.0,
                   "characters": list(scenes[i].get("characters") or [])}
            scenes.insert(i + 1, new)
            result["id"] = new["id"]
        elif verb == "split":
            s = scenes[i]
            first, second = _halves(s.get("narration") or "")
            lines = s.get("lines") or []
            half = (s["duration"] / 2) if s["duration"] > 0.2 else s["duration"]
            new = {**json.loads(json.dumps(s)), "id": _new_id(scenes, sid), "duration": round(half, 3),
                   "narration": second, "lines": lines[len(lines) // 2:]}
            scenes[i] = {**s, "duration": round(half, 3), "narration": first, "lines": lines[:len(lines) // 2]}
            scenes.insert(i + 1, new)
            result["id"] = new["id"]
        elif verb == "merge":
            if i + 1 >= len(scenes):
                raise ValidationError(f"Scene '{sid}' is the last one: nothing to merge it with.",
                                      f"场景“{sid}”是最后一个，没有可合并的下一场景。")
            a, b = scenes[i], scenes.pop(i + 1)
            scenes[i] = {**a, "duration": min(60.0, a["duration"] + b["duration"]),
                         "narration": "".join(x for x in (a.get("narration"), b.get("narration")) if x)[:2000],
                         "lines": ((a.get("lines") or []) + (b.get("lines") or []))[:40],
                         "characters": list(dict.fromkeys((a.get("characters") or []) + (b.get("characters") or [])))[:8]}
            for s in scenes:  # a scene that reused the merged one now reuses the merged scene
                if s.get("from") == b["id"]:
                    s["from"] = a["id"]
        elif verb == "reroll":
            scenes[i] = {**scenes[i], "seed": secrets.randbelow(2**31)}
        else:
            raise ValidationError(f"Unknown storyboard action '{verb}'.", f"未知的分镜操作“{verb}”。")
        if scenes and scenes[0].get("continue"):
            scenes[0] = {**scenes[0], "continue": False}  # the first scene has nothing to continue from
        return scenes

    store.edit_scenes(project_id, change)
    return result["id"]
