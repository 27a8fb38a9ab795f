"""Tables the REST layer adds to the studio database (created at startup, ``safe=True``).

``ApiKey``     one row per key: only the SHA-256 of the key is stored (keys are 256-bit random
               strings, so a fast hash is enough; the key itself is shown once, at creation).
``TaskGroup``  a seed 000 video request: one id for the jobs of its scenes.
``ApiSession`` a UI login made with a key (the cookie carries a session token, not the key).
"""

from __future__ import annotations

import time

from peewee import BooleanField, CharField, FloatField, JSONField

from app.db import BaseModel


class ApiKey(BaseModel):
    id = CharField(primary_key=True, max_length=16)  # short public id, for list / revoke
    user = CharField(index=True, max_length=64)
    digest = CharField(unique=True, max_length=64)  # sha256 hex of the key
    hint = CharField(max_length=16)  # the first characters, to recognise a key in a list
    label = CharField(default="", max_length=200)
    admin = BooleanField(default=False)
    created_at = FloatField(default=time.time)
    last_used_at = FloatField(null=True)
    revoked_at = FloatField(null=True)

    class Meta:
        table_name = "api_keys"


class TaskGroup(BaseModel):
    id = CharField(primary_key=True, max_length=32)
    user = CharField(null=True, index=True)
    kind = CharField(default="video")
    job_ids = JSONField(default=list)
    request = JSONField(default=dict)
    created_at = FloatField(default=time.time)

    class Meta:
        table_name = "api_task_groups"


class ApiSession(BaseModel):
    """A UI login: the cookie holds a random token (never the key); the row, its SHA-256."""

    id = CharField(primary_key=True, max_length=64)  # sha256 hex of the session token
    key_id = CharField(index=True, max_length=16)
    created_at = FloatField(default=time.time)
    expires_at = FloatField()

    class Meta:
        table_name = "api_sessions"


TABLES = (ApiKey, TaskGroup, ApiSession)
