"""Studio-wide actions: admins only, decided here (not by hiding a button).

    AdminService(studio)
        create_key / revoke_key / keys_view        REST and UI API keys
        set_provider_key / provider_keys            the organisation's cloud keys (secrets file)
        start_download / cancel_download            model weights (Settings → Models)
        fleet                                       team workers
        sweep_uploads                               retention of Gradio's upload cache

Each method takes the caller's ``Principal`` first and raises ``Forbidden`` (403) for a user.
"""

from __future__ import annotations

from .access import Principal, require_admin
from .secrets import KNOWN


class AdminService:
    def __init__(self, studio):
        self.studio = studio

    # --- API keys --------------------------------------------------------------------------
    def create_key(self, principal: Principal, user: str, *, admin: bool = False, label: str = ""):
        require_admin(principal, "create API keys", "创建 API 密钥")
        return self.studio.ops.keys.create(user, admin=admin, label=label)

    def revoke_key(self, principal: Principal, key_id: str):
        require_admin(principal, "revoke API keys", "吊销 API 密钥")
        return self.studio.ops.keys.revoke(key_id)

    def keys(self, principal: Principal):
        require_admin(principal, "see the API keys", "查看 API 密钥")
        return self.studio.ops.keys.list()

    # --- provider keys ---------------------------------------------------------------------
    def set_provider_key(self, principal: Principal, name: str, value: str | None) -> bool:
        """Save (or with ``None``/"" clear) one provider key; False for a name the studio does not use."""
        require_admin(principal, "change the provider keys", "修改服务商密钥")
        if name not in KNOWN:
            return False
        self.studio.secrets.set(name, value or None)
        return True

    # --- model downloads -------------------------------------------------------------------
    def start_download(self, principal: Principal, engine_id: str) -> dict:
        require_admin(principal, "download models", "下载模型")
        return self.studio.downloads.start(engine_id)

    def cancel_download(self, principal: Principal, engine_id: str) -> dict:
        require_admin(principal, "cancel model downloads", "取消模型下载")
        return self.studio.downloads.cancel(engine_id)

    # --- team ------------------------------------------------------------------------------
    def check_fleet(self, principal: Principal) -> None:
        require_admin(principal, "see the workers", "查看工作机")
