"""What the REST layer adds to a running studio, built once per ``Studio``.

``ApiRuntime`` holds the rest.yaml config, the key store, the user directory, the quota hook
(installed as ``studio.service.admission``), the rate limiter and the retention sweeper.
``Studio.start()/stop()`` call ``start()/stop()`` (the sweeper thread).
"""

from __future__ import annotations

import logging

from app.db import connection
from core.errors import ConfigError

from .auth import KeyStore, is_loopback
from .config import load_rest_config
from .models import TABLES
from .quotas import Admission, UserDirectory
from .ratelimit import RateLimiter
from .retention import RetentionSweeper

log = logging.getLogger(__name__)


class ApiRuntime:
    def __init__(self, studio):
        self.studio = studio
        self.settings = studio.settings
        self.config = load_rest_config(self.settings.workspace)
        with connection() as database:
            database.create_tables(TABLES, safe=True)
        self.users = UserDirectory(self.settings.workspace / "users")
        self.keys = KeyStore(is_admin_user=self.users.is_admin)
        self.admission = Admission(self.users, studio.engines)
        studio.service.admission = self.admission
        self.limiter = RateLimiter(self.config.rate_limit.per_minute, self.config.rate_limit.burst)
        self.sweeper = RetentionSweeper(self.settings, interval_s=self.config.retention_interval_minutes * 60,
                                        include_ui=self.config.sweep_ui_outputs)

    # --- who must show a key ------------------------------------------------------------
    @property
    def open_host(self) -> bool:
        """Listening beyond this machine (any non-loopback address)."""
        return not is_loopback(self.settings.host)

    def auth_required(self, rest: bool) -> bool:
        """Must this request carry a valid key? (``rest``: a REST route, not the Gradio app)."""
        if self.config.auth == "required" or self.open_host:
            return True
        return rest and self.keys.any_active()

    def check_bind(self) -> None:
        """Refuse to serve a non-loopback address with nobody able to log in."""
        if self.open_host and not self.keys.any_active():
            raise ConfigError(
                f"Refusing to listen on {self.settings.host}: that exposes the studio to the network and no API "
                "key exists yet. Create one first: `python launch.py keys create --user NAME` (then log in to the "
                "UI with it, and send it as 'Authorization: Bearer <key>'), or listen on 127.0.0.1.",
                f"拒绝监听 {self.settings.host}：这会把工作室暴露到网络，但还没有任何 API 密钥。请先创建："
                "`python launch.py keys create --user 用户名`（之后用它登录界面，并以 'Authorization: Bearer <密钥>' "
                "调用接口），或改为监听 127.0.0.1。")

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self.sweeper.start()

    def stop(self) -> None:
        self.sweeper.stop()
