"""KeyedCloudEngine: where keys come from, what a missing key says, base URLs, the journal sweep."""

from __future__ import annotations

import os
import time

import pytest

from core.errors import NotAvailable
from app.secrets import SecretStore
from app.settings import load_settings
from engines.cloud.ark import ArkEngine
from engines.cloud.dashscope import DashScopeEngine
from engines.cloud.keyed import KeyedCloudEngine
from engines.cloud.tencent_vod import TencentVodEngine
from engines.cloud.zhipu import ZhipuEngine

ENGINES = [DashScopeEngine, ZhipuEngine, ArkEngine, TencentVodEngine]
ALL_NAMES = {name for cls in ENGINES for name in cls.KEYS} | {cls.BASE_ENV for cls in ENGINES}


@pytest.fixture
def clean_env(monkeypatch):
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def build(cls, workspace, store: SecretStore | None):
    return cls(load_settings(workspace), store)


@pytest.mark.parametrize("cls", ENGINES)
def test_needs_names_every_key(cls):
    assert cls.needs == tuple(f"key:{name}" for name in cls.KEYS) and cls.KEYS


def test_an_adapter_must_say_its_keys_and_base():
    with pytest.raises(TypeError, match="keys="):
        class Half(KeyedCloudEngine, vendor="Half", base_env="HALF_BASE_URL", default_base="https://h.test"):
            id = "half"


@pytest.mark.parametrize("cls", ENGINES)
def test_keys_from_the_secrets_file_and_the_environment(cls, workspace, clean_env):
    store = SecretStore(workspace / "keys.yaml")
    engine = build(cls, workspace, store)
    assert engine.available()[0] is False
    for name in cls.KEYS:
        store.set(name, f"file-{name.lower()}")
    assert engine.available() == (True, "")
    assert engine.require_keys() == tuple(f"file-{name.lower()}" for name in cls.KEYS)
    clean_env.setenv(cls.KEYS[0], "from-env-0000")  # the store reads the environment first
    assert engine.key() == "from-env-0000"
    assert build(cls, workspace, None).key() == "from-env-0000"  # no store: environment only


@pytest.mark.parametrize("cls", ENGINES)
def test_a_missing_key_is_named_and_no_value_is_echoed(cls, workspace, clean_env):
    present = {name: f"present-secret-{i}-xyz" for i, name in enumerate(cls.KEYS[:-1])}
    for name, value in present.items():
        clean_env.setenv(name, value)
    engine = build(cls, workspace, SecretStore(workspace / "none.yaml"))
    missing = cls.KEYS[-1]
    ok, reason = engine.available()
    assert not ok and missing in reason and "Settings" in reason and "请在" not in reason  # English, then
    assert missing in reason.zh and "请在“设置 → 服务商密钥”中填写" in reason.zh  # Chinese on its own
    with pytest.raises(NotAvailable) as err:
        engine.require_keys()
    texts = (reason, reason.zh, err.value.en, err.value.zh)
    assert all(missing in text for text in texts) and cls.VENDOR in err.value.zh
    assert not any(name in err.value.en for name in present)  # only what is missing is named
    assert not any(value in text for value in present.values() for text in texts)


def test_auth_headers(workspace, clean_env):
    clean_env.setenv("DASHSCOPE_API_KEY", "ds-key-1234")
    clean_env.setenv("ARK_API_KEY", "ark-key-1234")
    dash = build(DashScopeEngine, workspace, None)
    assert dash._headers(create=True) == {"Authorization": "Bearer ds-key-1234", "Content-Type": "application/json",
                                          "X-DashScope-Async": "enable"}
    assert build(ArkEngine, workspace, None).auth_headers() == {"Authorization": "Bearer ark-key-1234"}
    with pytest.raises(NotAvailable, match="ZHIPUAI_API_KEY"):
        build(ZhipuEngine, workspace, None).auth_headers()


@pytest.mark.parametrize("cls", ENGINES)
def test_base_url_override_and_default(cls, workspace, clean_env):
    engine = build(cls, workspace, None)
    assert engine.base_url() == cls.DEFAULT_BASE.rstrip("/")
    clean_env.setenv(cls.BASE_ENV, "http://127.0.0.1:9/v9/")
    assert engine.base_url() == "http://127.0.0.1:9/v9"


def test_tencent_endpoint_is_the_root(workspace, clean_env):
    engine = build(TencentVodEngine, workspace, None)
    assert engine.endpoint() == "https://vod.tencentcloudapi.com/"
    clean_env.setenv("TENCENTCLOUD_VOD_ENDPOINT", "http://127.0.0.1:9")
    assert engine.endpoint() == "http://127.0.0.1:9/"


@pytest.mark.parametrize("cls", ENGINES)
def test_old_create_notes_are_swept_when_the_engine_is_built(cls, workspace):
    journal = build(cls, workspace, None).journal
    journal.save("old-job", state="sending")
    journal.save("new-job", state="sending")
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(journal._path("old-job"), (week_ago, week_ago))
    build(cls, workspace, None)
    assert journal.load("old-job") == {} and journal.load("new-job")["state"] == "sending"


def test_a_collects_sweep_reads_the_folder_at_most_once_an_hour(workspace, monkeypatch):
    """A sweep per collect read every note of the folder: 500 jobs collecting meant 250,000 stats."""
    from engines.cloud import journal as journal_mod

    journal = journal_mod.CreateJournal(workspace, "dashscope")
    week_ago = time.time() - 8 * 24 * 3600
    for name in ("a", "b"):
        journal.save(name, state="created")
        os.utime(journal._path(name), (week_ago, week_ago))
    clock = [1000.0]
    monkeypatch.setattr(journal_mod.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(journal_mod, "_last_sweep", {})
    assert journal.sweep(at_most_every=3600) == 2  # the first one sweeps
    journal.save("c", state="created")
    os.utime(journal._path("c"), (week_ago, week_ago))
    clock[0] += 60
    assert journal.sweep(at_most_every=3600) == 0 and journal.load("c")  # a minute later: not read at all
    clock[0] += 3600
    assert journal.sweep(at_most_every=3600) == 1 and journal.load("c") == {}  # an hour later: swept
    assert journal.sweep() == 0  # a plain sweep always reads the folder
