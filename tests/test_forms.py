"""The Create tab's parameter forms (app/ui/forms.py), built from every engine's Params model."""

from __future__ import annotations

import json

import pytest

from app.settings import load_settings
from app.ui.forms import component_for, params_from
from engines.registry import build_engines


def all_params_models(tmp_path):
    settings = load_settings(tmp_path)
    return {eid: engine.Params for eid, engine in build_engines(settings, None).items()}


def form(model):
    names = [n for n in model.model_fields if n != "seed"]
    return names, [component_for(n, model.model_fields[n]) for n in names]


def test_every_engine_form_builds_and_serialises(tmp_path):
    models = all_params_models(tmp_path)
    assert {"sdxl", "sdxl-instantid", "svd-xt", "wan2.1-t2v-1.3b"} <= set(models)
    for eid, model in models.items():
        for comp in form(model)[1]:
            json.dumps(comp.get_config())  # a default_factory field once sent PydanticUndefined here
            assert "PydanticUndefined" not in repr(comp.value), (eid, comp.label)


def test_an_untouched_form_submits_the_engines_own_defaults(tmp_path):
    for eid, model in all_params_models(tmp_path).items():
        names, comps = form(model)
        required = {n: "仙人" for n, f in model.model_fields.items() if f.is_required()}  # a speech engine's text
        names, comps = zip(*[(n, c) for n, c in zip(names, comps) if n not in required]) if required else (names, comps)
        params = params_from(model, list(names), [c.value for c in comps])
        submitted = model.model_validate({**params, **required}).model_dump()
        defaults = model(**required).model_dump()
        auto = {n for n, f in model.model_fields.items() if not f.is_required() and f.default is None}
        for name in auto - {"seed"}:  # "decide for me" stays undecided (e.g. vae_tiling: on when offloading)
            assert submitted[name] is None, (eid, name, submitted[name])
        assert {k: v for k, v in submitted.items() if k not in auto} == \
            {k: v for k, v in defaults.items() if k not in auto}, eid


@pytest.mark.parametrize(("choice", "value"), [("auto", None), ("on", True), ("off", False)])
def test_vae_tiling_is_auto_on_or_off(tmp_path, choice, value):
    model = all_params_models(tmp_path)["sdxl"]
    comp = component_for("vae_tiling", model.model_fields["vae_tiling"])
    assert comp.value == "auto" and set(comp.choices and [c[1] for c in comp.choices]) == {"auto", "on", "off"}
    params = params_from(model, ["vae_tiling"], [choice])
    assert model.model_validate(params).vae_tiling is value


def test_loras_are_picked_from_the_folder_with_optional_weights(tmp_path):
    from app.ui.forms import lora_picker

    model = all_params_models(tmp_path)["sdxl"]
    comp = lora_picker(model.model_fields["loras"], ["仙侠风格", "ink_wash"], tmp_path / "models" / "loras")
    assert [c[1] for c in comp.choices] == ["仙侠风格", "ink_wash"] and comp.value == []
    params = params_from(model, ["loras"], [["仙侠风格", "ink_wash:0.6", " jade : -1.5 "]])
    assert params == {"loras": [{"name": "仙侠风格"}, {"name": "ink_wash", "weight": 0.6},
                                {"name": "jade", "weight": -1.5}]}
    assert [(x.name, x.weight) for x in model.model_validate(params).loras] == \
        [("仙侠风格", 1.0), ("ink_wash", 0.6), ("jade", -1.5)]
    assert params_from(model, ["loras"], [[]]) == {"loras": []}
    from pydantic import ValidationError

    with pytest.raises(ValidationError):  # a weight that is not a number is refused by the model, not guessed
        model.model_validate(params_from(model, ["loras"], [["ink_wash:strong"]]))
