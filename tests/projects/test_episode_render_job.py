"""The stitch job's render for a project plan: speech from TTS outputs, the project's music, subtitles
published beside the MP4, everything in the result JSON-friendly."""

from __future__ import annotations

import json

from app.episode_render import publish_beside, render_job
from app.episodes import publish
from app.settings import load_settings
from core.stitch import Clip
from profiles.plan import audio_settings
from profiles.project import load_project
from tests.projects.conftest import PROJECT_YAML, SCENES_YAML, write_project
from tests.projects.synth import make_clip, make_music, make_tone, probe_av


def test_render_job_places_tts_outputs_and_music_and_publishes_subtitles(tmp_path):
    settings = load_settings(tmp_path / "ws")
    folder = write_project(settings.projects_dir, project=PROJECT_YAML + "music: assets/music/theme.wav\nmusic_volume: 0.4\n",
                           scenes=SCENES_YAML.replace("    camera: medium shot\n", "    camera: medium shot\n"
                                                      "    narration: 韩立打坐。\n"))
    (folder / "assets" / "music").mkdir()
    make_music(folder / "assets" / "music" / "theme.wav", 1.0)
    project = load_project(folder)
    plan = {"project": project.id, "title": "t", "name": "episode", "fps": 8, "width": 64, "height": 48, "upscale": False,
            "transition_duration": 0.5, "audio": audio_settings(project),
            "scenes": [{"scene": s.id, "transition": "cut"} for s in project.scenes]}
    assert plan["audio"]["music"] == "assets/music/theme.wav" and plan["audio"]["subtitles"] == "file"
    clips = [Clip(make_clip(tmp_path / f"{s.id}.mp4", 0.5, 8, 64, 48), s.duration, "cut") for s in project.scenes]
    speech_dir = settings.workspace / "outputs" / "tts"
    speech_dir.mkdir(parents=True)
    make_tone(speech_dir / "n.wav", 1.2)
    speech = {"s2-hanli": [{"file": "outputs/tts/n.wav", "duration": 1.2, "timings": [[0.0, 0.6, "韩立"], [0.6, 1.2, "打坐"]],
                            "text": "韩立打坐。", "speaker": "narrator", "at": None}]}
    work = tmp_path / "work"
    work.mkdir()
    result = render_job(settings, plan, clips, speech, work)
    assert result["extended"] == ["s2-hanli"] and result["cues"] == 1 and result["audio"]
    timeline = result["timeline"]
    assert [s["scene"] for s in timeline["scenes"]] == ["s1-sky", "s2-hanli", "s3-cloud"]
    assert timeline["speech"] == [{"scene": "s2-hanli", "start": 0.5, "end": 1.7, "speaker": "narrator", "text": "韩立打坐。"}]
    final, version = publish(work / "episode.mp4", settings.projects_dir / project.id / "renders", "episode")
    files = publish_beside(result, final, settings.workspace)
    assert files == {**{key: f"projects/{project.id}/renders/episode_v1.{key}" for key in ("srt", "ass", "otio")},
                     "jianying": f"projects/{project.id}/renders/episode_v1_jianying"}
    assert (settings.workspace / files["jianying"] / "draft_content.json").is_file()
    assert "00:00:00,500 --> 00:00:01,700" in (settings.workspace / files["srt"]).read_text(encoding="utf-8")
    info = probe_av(final)
    assert info["audio"]["codec"] == "aac" and abs(info["audio"]["seconds"] - info["video"]["frames"] / 8) <= 1 / 8
    json.dumps({**result, **files})  # what the job row's info keeps: no Path left
