"""Inputs an attacker controls: other users' outputs, server paths, image bombs, odd JSON."""

from __future__ import annotations

import base64

import httpx
import pytest

from app.access import Principal
from core.errors import NotFound, ValidationError

from .conftest import bomb_png, headers, png_bytes

WAN = {"engine": "wan2.1-t2v-1.3b", "prompt": "韩立御剑",
       "params": {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}}
SDXL = {"engine": "sdxl", "prompt": "仙子", "params": {"width": 64, "height": 64, "num_inference_steps": 2}}


@pytest.fixture
def api(make_api, tiny_sdxl_dir, tiny_wan_dir):
    return make_api(rest={"auth": "required"}, keys={"alice": False, "bob": False},
                    weights={"wan2.1-t2v-1.3b": tiny_wan_dir, "sdxl": tiny_sdxl_dir}, start=True)


def test_other_users_outputs_are_not_inputs(api):
    service, alice, bob = api.studio.service, Principal(user="alice"), Principal(user="bob")
    still = api.wait(service.submit(SDXL, alice).id)
    assert still.status == "succeeded", still.error
    i2v = {"engine": "svd-xt", "prompt": "", "params": {}}
    for ref in (f"job:{still.id}", f"job:{still.id}#0", still.id):
        with pytest.raises(NotFound):
            service.submit({**i2v, "image": ref}, bob)
    stolen = str(api.studio.settings.workspace / still.outputs[0]["file"])
    with pytest.raises(ValidationError, match="cannot be used"):
        service.submit({**i2v, "image": stolen}, bob)
    with pytest.raises(ValidationError, match="cannot be used"):
        service.submit({**i2v, "image": {"path": stolen}}, bob)
    # alice may use her own still
    assert service.image_of_job(still.id, alice).is_file()


def test_path_errors_do_not_tell_which_server_files_exist(api):
    from app.inputs import resolve_image

    ws = api.studio.settings.workspace
    messages = set()
    for path in ("/etc/nonexistent", "/etc/shadow", "/etc/passwd", str(ws / "studio.db"), "/etc"):
        with pytest.raises(ValidationError) as err:
            resolve_image(path, "first_frame", ws, None, trusted=False)
        messages.add(err.value.en)
    assert len(messages) == 1, messages
    with pytest.raises(ValidationError, match="data URI must hold a base64 image"):
        resolve_image("data:text/html;base64,PHNjcmlwdD4=", "first_frame", ws, None)


def test_decompression_bomb_gets_a_clear_4xx(api, monkeypatch):
    from gradio_client import Client

    for name in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"):  # refused before any network call
        monkeypatch.setenv(name, "test-only-not-a-key")
    monkeypatch.setenv("TENCENTCLOUD_VOD_ENDPOINT", "http://127.0.0.1:9")

    uri = "data:image/png;base64," + base64.b64encode(bomb_png()).decode()
    r = api.client.post("/aigc/create", headers=headers(api.keys["bob"]),
                        json={"prompt": "剑仙", "model_name": "Hailuo", "model_version": "2.3", "image_url": uri})
    assert 400 <= r.status_code < 500 and "megapixels" in r.text, r.text
    with pytest.raises(ValidationError, match="megapixels"):
        api.studio.service.submit({"engine": "svd-xt", "image": uri, "params": {}}, Principal(user="bob"))
    with pytest.raises(ValidationError, match="megapixels"):
        api.studio.service.submit({"engine": "svd-xt", "image": {"url": uri}, "params": {}}, Principal(user="bob"))
    from tests.api.conftest import serve

    with serve(api.app) as base:
        client = Client(base, headers=headers(api.keys["bob"]), verbose=False)
        with pytest.raises(Exception, match="megapixels"):
            client.predict({"engine": "svd-xt", "image": uri, "params": {}}, api_name="/submit")
    assert png_bytes()  # (a normal image still goes through the same check: see test_job_service)


def test_non_finite_numbers_get_a_json_422(api):
    for path, body in (("/video/submit", b'{"model": "Wan2.1-T2V-1.3B", "prompt": "a long enough prompt", '
                                         b'"image_size": "480x832", "seed": 1e400}'),
                       ("/aigc/create", b'{"prompt": "x", "model_name": "Hailuo", "duration": NaN}'),
                       ("/api/v1/images/generate", b'{"prompt": "x", "width": Infinity}')):
        r = api.client.post(path, headers={**headers(api.keys["bob"]), "Content-Type": "application/json"},
                            content=body)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json"), (path, r.text)


def test_odd_filters_and_project_names_are_clear_errors(api):
    service, bob = api.studio.service, Principal(user="bob")
    with pytest.raises(ValidationError, match="text value"):
        service.list({"status": [1, 2]}, bob)
    with pytest.raises(ValidationError, match="JSON object"):
        service.list([1, 2], bob)
    with pytest.raises(ValidationError):
        service.submit({**WAN, "project": "../../etc"}, bob)
    r = httpx.Client(transport=httpx.ASGITransport(app=api.app), base_url="http://t")  # noqa: F841


def test_a_user_filter_shows_no_one_else(api):
    service, alice, bob = api.studio.service, Principal(user="alice"), Principal(user="bob")
    job = service.submit(WAN, alice)
    assert job.id not in {j.id for j in service.list({"user": "alice"}, bob)}
    assert job.id in {j.id for j in service.list({"user": "alice"}, alice)}
