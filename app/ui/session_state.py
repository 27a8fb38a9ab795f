"""A new Gradio session costs the studio nothing until it needs its block configs.

Gradio builds a ``SessionState`` for every new session hash: every plain HTTP call
(``/gradio_api/call/<api>`` makes a new hash each time), every new ``gradio_client.Client``,
every page load. Its constructor computes the config of every block of the app
(``config_for_block`` → ``inspect.signature`` per block) on the server's event loop. For the
studio's UI (hundreds of blocks) that is ~35 ms of CPU per call on the one thread that also
serves every other request: it was most of ``/status``'s time at rest, and its p99 under load
(bench/cloud.py). A script's ``/status`` uses none of those configs.

``install()`` makes the per-session configs lazy: ``LazySessionState`` keeps them in a
``LazyConfigs`` dict that computes a block's config the first time it is asked for (or all of
them when iterated, as a deep link does), with the same values Gradio would have computed at
session start. Everything else is Gradio's ``SessionState``. ``tests/test_session_state.py``
checks the attributes and values against Gradio's own class, so an upgrade that changes it fails
there rather than here.
"""

from __future__ import annotations

import os
from copy import copy
from typing import Any

_installed = False


class LazyConfigs(dict):
    """``config_values`` of a session: block id -> config, computed on first use."""

    def __init__(self, blocks_config, ids: list[int]):
        super().__init__()
        self._blocks_config, self._ids, self._known, self._filled = blocks_config, ids, set(ids), False

    def _make(self, key: int) -> dict:
        return self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key])

    def __missing__(self, key: int) -> dict:
        if self._filled or key not in self._blocks_config.blocks or key not in self._known:
            raise KeyError(key)
        value = self[key] = self._make(key)
        return value

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (not self._filled and key in self._known
                                                and key in self._blocks_config.blocks)

    def _fill(self) -> None:
        if self._filled:
            return
        known = dict(dict.items(self))
        ordered = {k: known.pop(k) if k in known else self._make(k) for k in self._ids
                   if k in self._blocks_config.blocks}
        self.clear()
        self.update({**ordered, **known})
        self._filled = True

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def keys(self):
        self._fill()
        return super().keys()

    def values(self):
        self._fill()
        return super().values()

    def items(self):
        self._fill()
        return super().items()

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default


def install() -> None:
    """Make Gradio's new sessions lazy (once per process)."""
    global _installed
    if _installed:
        return
    from gradio import state_holder

    base = state_holder.SessionState

    class LazySessionState(base):
        def __init__(self, blocks):
            self.blocks_config = copy(blocks.default_config)
            ids = [k for k in self.blocks_config.blocks if k in blocks.blocks]
            self.config_values = LazyConfigs(self.blocks_config, ids)
            self.state_data = {}
            self._state_ttl = {}
            self.is_closed = False
            self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600

    state_holder.SessionState = LazySessionState
    _installed = True
