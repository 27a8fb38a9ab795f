"""GPU pool: each gpu-lane worker owns one card for its whole life."""

from __future__ import annotations

import threading

import pytest

from core.errors import ConfigError
from engines.local.devices import DevicePool


def owned_by_threads(pool: DevicePool, threads: int) -> list[int | None]:
    seen: list[tuple[int, int | None]] = []
    barrier = threading.Barrier(threads)

    def worker(i):
        barrier.wait()  # all alive at once, so the pool sees distinct threads
        first = pool.current()
        assert pool.current() == first  # a worker keeps its card
        seen.append((pool.slot(), first))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return [card for _, card in sorted(seen)]


def test_each_worker_owns_a_listed_card():
    pool = DevicePool([1, 3], count=lambda: 4)
    assert owned_by_threads(pool, 2) == [1, 3]


def test_more_workers_than_cards_share_round_robin():
    pool = DevicePool([], count=lambda: 2)  # empty = every visible card
    assert owned_by_threads(pool, 4) == [0, 1, 0, 1]


def test_no_cuda_means_cpu():
    pool = DevicePool([0, 1], count=lambda: 0)
    assert owned_by_threads(pool, 2) == [None, None]
    assert "CPU" in pool.describe(2)


def test_unknown_card_is_a_clear_config_error():
    pool = DevicePool([0, 2], count=lambda: 2)
    with pytest.raises(ConfigError) as err:
        pool.current()
    assert "gpu_ids" in err.value.en and "[2]" in err.value.en and "0–1" in err.value.en
    assert "显卡" in err.value.zh
    assert "gpu_ids" in pool.describe(1)


def test_describe_names_idle_cards():
    pool = DevicePool([0, 1, 2], count=lambda: 4)
    line = pool.describe(2)
    assert "worker 1 → cuda:0" in line and "worker 2 → cuda:1" in line and "idle: [2]" in line


def test_local_engines_share_one_pool_and_record_the_device(tmp_path):
    from app.settings import load_settings
    from engines.registry import build_engines

    settings = load_settings(tmp_path, gpu_pool={"max_concurrent": 2, "gpu_ids": [0, 1]})
    engines = build_engines(settings)
    pools = {id(e.devices) for e in engines.values() if e.kind == "local" and e.lane == "gpu"}
    caches = {id(e.cache) for e in engines.values() if e.kind == "local" and e.lane == "gpu"}
    assert len(pools) == 1 and len(caches) == 1


def test_describe_speaks_chinese_too():
    assert "空闲：[2]" in DevicePool([0, 1, 2], count=lambda: 4).describe(2, zh=True)
    assert "CPU" in DevicePool([], count=lambda: 0).describe(1, zh=True)
    assert "显卡" in DevicePool([5], count=lambda: 1).describe(1, zh=True)
