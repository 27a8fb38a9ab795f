"""Project YAML: loading, strict validation with clear errors, safe parsing, edits, zips, samples."""

from __future__ import annotations

import io
import os
import time
import zipfile

import pytest

from core.errors import Conflict, NotFound, ProfileError, ValidationError
from profiles import ProjectStore, compose, export_zip, import_zip, load_project
from profiles.samples import install_samples
from profiles.styles import STYLES
from tests.projects.conftest import CHARACTERS_YAML, PROJECT_YAML, SCENES_YAML, write_project


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "projects"
    folder.mkdir()
    return folder


def refused(folder, **files) -> ProfileError:
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        load_project(folder)
    exc = err.value
    assert "Traceback" not in exc.en and exc.zh and exc.zh != exc.en
    return exc


def test_good_project_loads_with_composed_prompts(root):
    project = load_project(write_project(root))
    assert project.config.title == "测试 Test episode" and project.config.size == (64, 48)
    assert [s.id for s in project.scenes] == ["s1-sky", "s2-hanli", "s3-cloud"]
    assert project.faces("hanli")[0].name == "face.png"
    prompt, negative = project.composed(project.scenes[1])
    assert prompt.startswith(STYLES["xianxia"].prompt)
    assert prompt.index("Han Li, young cultivator") < prompt.index("Han Li meditating") < prompt.index("medium shot")
    assert negative.startswith("blurry") and STYLES["xianxia"].negative in negative


def test_compose_is_pure_and_drops_empty_and_repeated_parts(root):
    project = load_project(write_project(root))
    scene = project.scenes[1]
    assert compose(project.config, project.characters, scene) == compose(project.config, project.characters, scene)
    none = project.config.model_copy(update={"style": "none", "negative_prompt": ""})
    plain = scene.model_copy(update={"camera": "", "characters": ["hanli", "hanli"]})
    assert compose(none, project.characters, plain) == ("Han Li, young cultivator, Han Li meditating on a rock", "")


def test_unknown_field_names_file_field_and_allowed_fields(root):
    folder = write_project(root)
    exc = refused(folder, scenes=SCENES_YAML.replace("    duration: 0.5", "    duration: 0.5\n    durtion: 3"))
    assert exc.en.startswith("scenes.yaml → scenes[0].durtion: unknown field")
    assert "remove 'durtion'" in exc.en and "duration" in exc.en.split("allowed here:")[1]
    assert exc.fields == {"file": "scenes.yaml", "field": "scenes[0].durtion"}
    exc = refused(folder, scenes=SCENES_YAML, project=PROJECT_YAML + "colour: red\n")
    assert exc.en.startswith("project.yaml → colour: unknown field") and "resolution" in exc.en


def test_missing_character_is_named_with_the_fix(root):
    folder = write_project(root)
    exc = refused(folder, scenes=SCENES_YAML.replace("characters: [hanli]", "characters: [hanli, nangong-wan]"))
    assert "scenes.yaml → scenes[1].characters[1]: unknown character 'nangong-wan'" in exc.en
    assert "define it in characters.yaml" in exc.en and "hanli" in exc.en and exc.fields["file"] == "scenes.yaml"


@pytest.mark.parametrize("value, needle", [("-1", "greater than 0"), ("0", "greater than 0"),
                                           ("120", "less than or equal to 60"), ("five", "valid number")])
def test_bad_duration(root, value, needle):
    folder = write_project(root)
    exc = refused(folder, scenes=SCENES_YAML.replace("duration: 0.75", f"duration: {value}"))
    assert exc.en.startswith("scenes.yaml → scenes[1].duration:") and needle in exc.en and "Fix:" in exc.en


@pytest.mark.parametrize("file, old, new, field", [
    ("scenes", "id: s1-sky", "id: ../../etc", "scenes[0].id"),
    ("scenes", "id: s1-sky", "id: 'a/b'", "scenes[0].id"),
    ("characters", "  hanli:", "  ../hanli:", "characters[id '../hanli']"),
    ("characters", "[hanli/face.png]", "[../../../secret.png]", "characters.hanli.reference_images[0]"),
    ("characters", "[hanli/face.png]", "[/etc/passwd.png]", "characters.hanli.reference_images[0]"),
    ("scenes", "    duration: 1.0\n", "    duration: 1.0\n    keyframe: ../../x.png\n", "scenes[2].keyframe"),
    ("project", "title:", "character_profiles: ../other.yaml\ntitle:", "character_profiles"),
])
def test_path_traversal_in_ids_and_paths_is_refused(root, file, old, new, field):
    folder = write_project(root)
    text = {"scenes": SCENES_YAML, "characters": CHARACTERS_YAML, "project": PROJECT_YAML}[file]
    assert old in text
    exc = refused(folder, **{file: text.replace(old, new, 1)})
    assert exc.fields["field"] == field, exc.en
    store = ProjectStore(root)
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(NotFound):
            store.get(bad)


def test_yaml_bomb_and_oversized_files_are_refused_before_expanding(root):
    folder = write_project(root)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    started = time.monotonic()
    exc = refused(folder, characters=bomb)
    assert time.monotonic() - started < 1.0
    assert "characters.yaml (line 1" in exc.en and "anchors" in exc.en
    exc = refused(folder, characters="characters: *x\n")
    assert "aliases" in exc.en
    exc = refused(folder, characters="characters:\n" + "  # padding\n" * 30000)
    assert "larger than 256 KB" in exc.en
    exc = refused(folder, characters="characters: " + "[" * 200 + "]" * 200 + "\n")
    assert "nest" in exc.en
    exc = refused(folder, characters=CHARACTERS_YAML + "  hanli:\n    name: again\n")
    assert "appears twice" in exc.en and "line 7" in exc.en


def test_not_yaml_and_wrong_shapes(root):
    folder = write_project(root)
    exc = refused(folder, scenes="scenes:\n  - id: s1\n    prompt: a: b\n")
    assert exc.en.startswith("scenes.yaml (line 3") and "quote" in exc.en
    exc = refused(folder, scenes="- just a list\n")
    assert "expected a mapping" in exc.en
    (folder / "project.yaml").unlink()
    with pytest.raises(NotFound, match="project.yaml"):
        load_project(folder)


def test_store_reloads_changed_files_and_never_loses_an_edit(root):
    write_project(root)
    store = ProjectStore(root)
    first = store.get("test-ep")
    assert store.get("test-ep") is first  # unchanged files: cached
    path = first.scenes_file
    text = path.read_text(encoding="utf-8").replace("sea of clouds at sunset", "sea of clouds at dawn")
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert store.get("test-ep").scenes[2].prompt == "sea of clouds at dawn"  # a hand edit is seen at once
    store.upsert_scene("test-ep", {"id": "s1-sky", "prompt": "new sky"})
    project = store.get("test-ep")
    assert project.scenes[0].prompt == "new sky" and project.scenes[2].prompt == "sea of clouds at dawn"
    assert (path.parent / "scenes.yaml.bak").read_text(encoding="utf-8") == text  # the hand-written version kept
    broken = path.read_text(encoding="utf-8").replace("duration: 0.75", "duration: -2")
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ProfileError, match=r"scenes\[1\]\.duration"):
        store.upsert_scene("test-ep", {"id": "s1-sky", "prompt": "edited on a broken file"})
    assert path.read_text(encoding="utf-8") == broken  # the user's file is left exactly as it was
    with pytest.raises(ProfileError):
        store.edit_scenes("test-ep", lambda s: s)
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    with pytest.raises(ProfileError, match="unknown character 'ghost'"):
        store.upsert_scene("test-ep", {"id": "s1-sky", "characters": ["ghost"]})
    store.move_scene("test-ep", "s3-cloud", -2)
    assert [s.id for s in store.get("test-ep").scenes] == ["s3-cloud", "s1-sky", "s2-hanli"]
    with pytest.raises(Conflict, match="used by scene"):
        store.remove_character("test-ep", "hanli")


def test_create_duplicate_and_assets(root):
    store = ProjectStore(root)
    created = store.create("my-series", "我的剧", style="ink-wash")
    assert created.config.style == "ink-wash" and created.scenes == [] and created.assets_dir.is_dir()
    with pytest.raises(Exception, match="already exists"):
        store.create("my-series", "again")
    with pytest.raises(ProfileError, match="style"):
        store.create("other", "x", style="vaporwave")
    store.upsert_character("my-series", "hanli", {"name": "韩立", "prompt": "Han Li"})
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, format="PNG")
    rel = store.add_asset("my-series", "hanli", buf.getvalue(), stem="face")
    store.upsert_character("my-series", "hanli", {"reference_images": [rel]})
    assert store.get("my-series").faces("hanli")[0].is_file()
    with pytest.raises(ValidationError, match="could not be read as an image"):
        store.add_asset("my-series", "hanli", b"<svg/>")
    copy = store.duplicate("my-series", title="副本")
    assert copy.id == "my-series-copy" and copy.config.title == "副本" and copy.faces("hanli")
    project, character = store.find_character("hanli")  # seed 000's character_id lookup
    assert project.id == "my-series" and character.name == "韩立"
    with pytest.raises(NotFound, match="Unknown character 'nobody'"):
        store.find_character("nobody")


def test_zip_round_trip_and_hostile_archives(root):
    write_project(root)
    store = ProjectStore(root)
    data = export_zip(store, "test-ep")
    new_id, skipped = import_zip(store, data)
    assert new_id == "test-ep-2" and skipped == []
    assert store.get(new_id).faces("hanli") and [s.id for s in store.get(new_id).scenes][0] == "s1-sky"

    def archive(entries: dict) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, body in entries.items():
                zf.writestr(name, body)
        return buf.getvalue()

    good = {"p/project.yaml": PROJECT_YAML, "p/scenes.yaml": SCENES_YAML.replace("[hanli]", "[]"),
            "p/characters.yaml": "characters: {}\n"}
    for evil in ("p/../../evil.yaml", "/abs/evil.png", "p/assets/../../../x.png", "C:/x.png"):
        with pytest.raises(ValidationError, match="unsafe path"):
            import_zip(store, archive({**good, evil: "x"}))
    assert not (root.parent / "evil.yaml").exists()
    with pytest.raises(ValidationError, match="too much data"):
        import_zip(store, archive({**good, "p/assets/big.png": b"\0" * (50 * 2**20)}))
    with pytest.raises(ProfileError, match="scenes.yaml"):
        import_zip(store, archive({**good, "p/scenes.yaml": "scenes: [{id: x}]\n"}))
    assert not any(p.name.startswith(".import") for p in root.iterdir())
    pid, skipped = import_zip(store, archive({**good, "p/run.sh": "rm -rf /", "p/assets/a.png": b"x"}))
    assert pid == "p" and skipped == ["run.sh"] and not (root / "p" / "run.sh").exists()
    with pytest.raises(ValidationError, match="not a zip"):
        import_zip(store, b"PK nope")


def test_sample_project_is_installed_once_and_loads(root):
    assert install_samples(root) == ["xianxia-sample"]
    sample = ProjectStore(root).get("xianxia-sample")
    assert len(sample.scenes) == 6 and {"hanli", "nangong-wan", "li-feiyu"} <= set(sample.characters)
    assert sample.characters["hanli"].name.startswith("韩立") and sample.characters["hanli"].reference_images == []
    assert "yours to add" in (sample.dir / "README.md").read_text(encoding="utf-8")
    assert "Reference faces are yours to add" in sample.characters_file.read_text(encoding="utf-8")
    import shutil

    shutil.rmtree(sample.dir)
    assert install_samples(root) == []  # a sample the user deleted does not come back
