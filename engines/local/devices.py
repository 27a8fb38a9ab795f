"""Which GPU each gpu-lane worker owns (seed 000 ``gpu_pool``).

The gpu lane has ``gpu_pool.max_concurrent`` worker threads. The first time a worker runs a
local job it takes the next slot, and slot *i* owns ``gpu_ids[i % len(gpu_ids)]`` for the rest
of its life: with ``gpu_ids: [0, 1]`` and two workers, each card runs one job at a time and keeps
its own warm pipelines (the cache key names the device). ``gpu_ids: []`` means every visible
card. More workers than cards share cards round-robin; fewer leave cards idle (the Settings tab
says so).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from core.errors import ConfigError


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class DevicePool:
    def __init__(self, gpu_ids: list[int] | tuple[int, ...] = (), count: Callable[[], int] = cuda_count):
        self.gpu_ids = list(gpu_ids)
        self._count = count
        self._slots: dict[int, int] = {}  # thread ident -> slot
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> DevicePool:
        return cls(settings.gpu_pool.gpu_ids)

    def cards(self) -> list[int]:
        """The CUDA indices this pool hands out (empty: no CUDA here). Raises ``ConfigError``
        when ``gpu_ids`` names a card this machine does not have."""
        count = self._count()
        if count == 0:
            return []
        if not self.gpu_ids:
            return list(range(count))
        bad = [i for i in self.gpu_ids if not 0 <= i < count]
        if bad:
            have = f"0–{count - 1}" if count > 1 else "0"
            raise ConfigError(
                f"gpu_pool.gpu_ids lists GPU {bad} but this machine has {count} (ids {have}). "
                "Fix gpu_ids in config.yaml, or leave it empty to use every GPU.",
                f"gpu_pool.gpu_ids 中的 GPU {bad} 不存在：本机只有 {count} 块显卡（编号 {have}）。"
                "请修改 config.yaml 中的 gpu_ids，或留空以使用全部显卡。")
        return self.gpu_ids

    def slot(self) -> int:
        """This thread's slot (taken on first use)."""
        ident = threading.get_ident()
        with self._lock:
            if ident not in self._slots:
                self._slots[ident] = len(self._slots)
            return self._slots[ident]

    def claim(self, slot: int) -> None:
        """Give the calling thread ``slot`` (a gpu-lane worker process: its one thread is the
        studio's worker ``slot``)."""
        with self._lock:
            self._slots[threading.get_ident()] = slot

    def current(self) -> int | None:
        """The CUDA index the calling worker owns, or ``None`` without CUDA."""
        cards = self.cards()
        return cards[self.slot() % len(cards)] if cards else None

    def describe(self, workers: int, zh: bool = False) -> str:
        """One line for the Settings tab: which worker runs on which card."""
        try:
            cards = self.cards()
        except ConfigError as exc:
            return exc.zh if zh else exc.en
        if not cards:
            return (f"没有 CUDA 显卡：{workers} 个 GPU 队列工作线程在 CPU 上运行" if zh
                    else f"no CUDA GPU: {workers} gpu-lane worker(s) run on the CPU")
        owned = [cards[i % len(cards)] for i in range(workers)]
        word = "工作线程" if zh else "worker"
        pairs = ", ".join(f"{word} {i + 1} → cuda:{card}" for i, card in enumerate(owned))
        idle = [c for c in cards if c not in owned]
        if not idle:
            return pairs
        return pairs + (f"；空闲：{idle}（调大 gpu_pool.max_concurrent 以使用）" if zh
                        else f"; idle: {idle} (raise gpu_pool.max_concurrent to use them)")
