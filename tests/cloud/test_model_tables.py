"""Model tables as data (engines/cloud/models/*.yaml): strict loading, unknown ids, and a new model
added by a data edit alone, run through each real adapter and its fake."""

from __future__ import annotations

import pytest
import yaml

from app.access import LOCAL
from core.errors import ConfigError, ValidationError
from engines.cloud import modeltable
from tests.cloud.helpers import run_job
from tests.cloud.vendors import VENDORS

# one new model per vendor: (model id, its table entry, params of a job, a param the entry does not allow)
NEW = {
    "ark": ("doubao-seedance-3-0-270101",
            {"tasks": ["t2v"], "resolutions": ["720p"], "durations": [5], "fields": ["resolution", "duration"]},
            {"resolution": "720p", "duration": 5}, {"camera_fixed": True}),
    "dashscope": ("wan3.0-t2v", {"tasks": ["t2v"], "resolutions": ["720P"], "durations": [5]},
                  {"resolution": "720P", "duration": 5}, {"duration": 10}),
    "zhipu": ("cogvideox-4", {"tasks": ["t2v", "i2v"], "sizes": ["1920x1080"], "durations": [5],
                              "fields": ["size", "duration"]}, {"size": "1920x1080"}, {"fps": 60}),
    "tencent-vod": ("Pixverse", {"tasks": ["t2v"], "versions": ["5"], "durations": [5], "resolutions": ["720P"]},
                    {"duration": 5}, {"resolution": "1080P"}),
}


def teach_fake(vendor: str, fake, model: str, monkeypatch) -> None:
    """The vendor shipped the model: its fake learns the id (as the real one would)."""
    if vendor == "dashscope":
        fake.models[model] = "t2v"
    elif vendor == "tencent-vod":
        from tests.cloud import fake_tencent

        monkeypatch.setitem(fake_tencent.VERSIONS, model, {"5"})
    else:
        fake.models.add(model)


def test_every_packaged_table_loads_and_names_its_vendor():
    for vendor in VENDORS:
        table = modeltable.load(vendor)
        assert table.engine == vendor and table.models
        for spec in table.models.values():
            if spec.price is not None:
                assert spec.price.source.startswith("https://") and spec.price.date.year >= 2025


def test_a_bad_table_is_refused_with_its_path(tmp_path):
    bad = tmp_path / "ark.yaml"
    bad.write_text(yaml.safe_dump({"models": {"m": {"tasks": ["t2v"], "sound": True}}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="ark.yaml"):
        modeltable.load("ark", bad)
    bad.write_text(yaml.safe_dump({"models": {"m": {"tasks": ["dance"]}}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="ark.yaml"):
        modeltable.load("ark", bad)


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_unknown_model_is_refused_naming_the_table(vendor, studio_for):
    studio, fake = studio_for(vendor)
    with pytest.raises(ValidationError) as err:
        studio.service.submit({"engine": vendor, "prompt": "山", "params": {"model": NEW[vendor][0]}}, LOCAL)
    text = str(err.value)
    assert f"engines/cloud/models/{vendor}.yaml" in text and "allow_unknown_models" in text
    assert all(known in text for known in modeltable.load(vendor).ids())
    assert fake.count(VENDORS[vendor].create_route) == 0


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_allow_unknown_models_sends_it_with_generic_checks(vendor, studio_for, monkeypatch):
    model, _, params, _ = NEW[vendor]
    studio, fake = studio_for(vendor, config={"allow_unknown_models": True})
    teach_fake(vendor, fake, model, monkeypatch)
    job = run_job(studio, {"engine": vendor, "prompt": "一只白鹤飞过云海", "params": {"model": model, **params}})
    assert job.status == "succeeded", job.error
    with pytest.raises(ValidationError):  # the generic checks still hold
        bad_prompt = "--duration 5" if vendor == "ark" else "x" * 3000  # no text / far too long
        studio.service.submit({"engine": vendor, "prompt": bad_prompt, "params": {"model": model}}, LOCAL)


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_a_new_model_is_a_data_edit(vendor, studio_for, monkeypatch):
    model, entry, params, refused = NEW[vendor]
    studio, fake = studio_for(vendor, extra={model: entry})
    teach_fake(vendor, fake, model, monkeypatch)
    job = run_job(studio, {"engine": vendor, "prompt": "一只白鹤飞过云海", "params": {"model": model, **params}})
    assert job.status == "succeeded", job.error
    assert job.outputs and job.outputs[0]["kind"] == "video"
    with pytest.raises(ValidationError):  # the entry's limits are the ones checked
        studio.service.submit({"engine": vendor, "prompt": "山", "params": {"model": model, **refused}}, LOCAL)
