"""Robustness: a schemathesis run over /openapi.json finds no 5xx; traversal and big bodies are refused."""

from __future__ import annotations

import time

import pytest

from tests.cloud.fake_tencent import SECRET_ID, SECRET_KEY

CASES_PER_OPERATION = 75  # valid data for every operation, invalid data where there is a body or query: > 2,000


@pytest.fixture
def fuzz_api(make_api, monkeypatch, tiny_wan_dir, tiny_sdxl_dir):
    # every seed's engine is usable (keys set, weights present) so a 503 would be a real finding; the
    # queue is not started and nothing leaves this machine: jobs just wait in the table
    for name, value in {"DASHSCOPE_API_KEY": "sk-fuzz", "ZHIPUAI_API_KEY": "fuzz.key", "ARK_API_KEY": "ark-fuzz",
                        "TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
                        "TENCENTCLOUD_VOD_SUBAPPID": "1"}.items():
        monkeypatch.setenv(name, value)
    return make_api(weights={"wan2.1-t2v-1.3b": tiny_wan_dir, "sdxl": tiny_sdxl_dir},
                    rest={"engines": {"seed000_character": "sdxl"}})


def test_fuzz_openapi_finds_no_server_errors(fuzz_api):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_api.app)
    # the team-mode worker routes (app/api/uploads.py) belong to the team work and are fuzzed there
    operations = [result.ok() for result in schema.get_all_operations()
                  if not result.ok().path.startswith("/api/v1/team/")]
    assert len(operations) >= 18
    seen, errors = [0], []
    started = time.monotonic()
    client = fuzz_api.client
    for operation in operations:
        takes_input = bool(operation.get_request_payload_content_types()) or any(
            p.location == "query" for p in operation.iter_parameters())
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes_input else (GenerationMode.POSITIVE,)
        for mode in modes:
            @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                seen[0] += 1
                try:
                    response = client.request(**case.as_transport_kwargs(base_url="http://testserver"))
                except Exception as exc:  # the app raised instead of answering: a 500 for a client
                    errors.append(f"{case.method} {case.formatted_path} {case.body!r:.300} -> {exc!r:.300}")
                    return
                if response.status_code >= 500:
                    errors.append(f"{case.method} {case.formatted_path} {case.body!r:.300} -> "
                                  f"{response.status_code} {response.text[:300]}")

            run()
    elapsed = time.monotonic() - started
    assert not errors, "\n".join(errors[:20])
    assert seen[0] >= 2000, seen[0]
    print(f"fuzz: {seen[0]} cases in {elapsed:.0f} s")  # (about 40 s on an idle 2-core machine; not asserted)


def test_ids_cannot_walk_out_of_the_workspace(fuzz_api):
    client = fuzz_api.client
    for path in ("/videos/..%2F..%2Fstudio.db", "/videos/../studio.db", "/videos/%2e%2e%2fstudio.db",
                 "/videos/" + "a" * 32 + "_0_thumb.mp4%00.jpg", "/api/v1/tasks/..%2Fstudio.db",
                 "/api/v1/videos/tasks/..%5C..%5Cstudio.db", "/files/x/..%2F..%2Fstudio.db"):
        r = client.get(path)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert b"SQLite" not in r.content
    for rid in ("../../studio.db", "/etc/passwd", "..\\..\\studio.db", "a" * 64):
        assert client.post("/video/status", json={"requestId": rid}).status_code in (404, 422)
        assert client.post("/aigc/task", json={"task_id": rid}).status_code in (404, 422)
    r = client.post("/api/v1/tasks/", json={"model": "wanx2.1-i2v-turbo", "provider": "aliyun",
                                            "parameters": {"prompt": "猫", "img_url": {"path": "/etc/passwd"}}})
    assert r.status_code == 422
    r = client.post("/aigc/create", json={"prompt": "猫", "image_url": str(fuzz_api.studio.settings.db_path)})
    assert r.status_code == 422


def test_oversize_bodies_are_refused(fuzz_api):
    client = fuzz_api.client
    big = b'{"prompt": "' + b"x" * (17 * 2**20) + b'"}'
    r = client.post("/api/v1/videos/tasks", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while it streams
        yield b'{"prompt": "'
        for _ in range(20):
            yield b"y" * 2**20
        yield b'"}'

    r = client.post("/video/submit", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/video/submit", content=b"{}", headers={"Content-Type": "application/json",
                                                            "Content-Length": "99999999999"})
    assert r.status_code == 413
