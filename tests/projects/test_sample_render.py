"""The built-in sample project, rendered end to end on CPU as a new user would: its six scenes on the
loopback DashScope (clips), its narration and dialogue on the tiny random-weight Kokoro (``local-tts``,
the sample's own voices), music under it — through the real queue, the episode state machine, the
stitch and the mix. The MP4 is probed with ffmpeg."""

from __future__ import annotations

import json

from app.access import LOCAL
from app.db import Job
from app.episodes import EpisodeService
from app.subtitles import split_text
from profiles import load_project
from profiles.samples import SAMPLES_DIR
from profiles.voices import speech_lines
from tests.conftest import wait_for
from tests.projects.synth import decode_audio, loudness, make_music, probe_av, rms_db
from tests.tiny_speech import build_tiny_kokoro, teach_words

SAMPLE = "xianxia-sample"


def test_the_sample_project_renders_a_finished_episode(workspace, fake_dashscope):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    sample = load_project(SAMPLES_DIR / SAMPLE)
    script = {s.id: [line.text for line in speech_lines(sample, s)] for s in sample.scenes}
    teach_words(build_tiny_kokoro(workspace / "models" / "local-tts"), [t for lines in script.values() for t in lines])
    st = Studio(load_settings(workspace))  # the first start installs the sample
    st.start()
    try:
        with db.connection_context():
            episodes = EpisodeService(st.service)
            folder = st.settings.projects_dir / SAMPLE
            (folder / "assets" / "music").mkdir(parents=True, exist_ok=True)
            make_music(folder / "assets" / "music" / "theme.wav", 4.0)
            # every clip on the cloud engine (the loopback fake), a small frame so the test stays fast
            episodes.store.update_config(SAMPLE, {"default_engine": "dashscope", "resolution": "128x72",
                                                  "music": "music/theme.wav",
                                                  "engine_params": {"dashscope": {"prompt_extend": False}}})
            plan = episodes.plan(SAMPLE)
            assert all(any(x.engine == "local-tts" for x in s.steps) for s in plan.scenes)  # every scene speaks
            job = episodes.render(SAMPLE, LOCAL)
            done = wait_for(lambda: (j := st.service.get(job.id, LOCAL)).status in ("succeeded", "failed",
                                                                                      "cancelled") and j, timeout=300)
            assert done.status == "succeeded", (done.error, done.message)
            kids = list(Job.select().where(Job.parent == done.id))
            assert sorted({k.engine for k in kids}) == ["dashscope", "local-tts", "stitch"]
            assert sum(k.engine == "local-tts" for k in kids) == sum(len(v) for v in script.values())
            render = st.settings.workspace / done.outputs[0]["file"]
            side = json.loads(render.with_suffix(".json").read_text(encoding="utf-8"))
    finally:
        st.stop()

    info = probe_av(render)
    video, audio = info["video"], info["audio"]
    assert (video["width"], video["height"], video["fps"]) == (128, 72, 16)
    assert audio["codec"] == "aac" and audio["rate"] == 48000 and audio["channels"] == 2
    assert abs(audio["seconds"] - video["frames"] / 16) <= 1 / 16  # audio as long as the picture, within a frame
    # subtitles: one cue per piece of the script, split for reading
    srt = (st.settings.workspace / side["subtitles"]["srt"]).read_text(encoding="utf-8")
    cues = [b for b in srt.strip().split("\n\n") if b.strip()]
    assert len(cues) == side["subtitles"]["cues"] == sum(len(split_text(t)) for v in script.values() for t in v)
    assert "韩师弟，看剑！" in srt
    # speech is heard inside every scene, where the timeline put each line
    x = decode_audio(render)
    placed = side["timeline"]["speech"]
    assert sorted({p["scene"] for p in placed}) == sorted(script)
    for scene in side["timeline"]["scenes"]:
        lines = [p for p in placed if p["scene"] == scene["scene"]]
        assert len(lines) == len(script[scene["scene"]])
        for p in lines:
            assert scene["start"] <= p["start"] < p["end"] <= scene["start"] + scene["duration"] + 1e-6, p
            assert rms_db(x, p["start"] + 0.05, p["end"] - 0.05) > -30, p
    integrated, peak = loudness(render)
    assert abs(integrated + 16) <= 1 and peak <= -0.5
    last = side["timeline"]["scenes"][-1]
    assert round((last["start"] + last["duration"]) * 16) == video["frames"]  # the timeline is the picture
