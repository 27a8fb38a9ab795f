"""Moved to ``core.errors``; kept so older imports keep working while the tree moves."""

from core.errors import *  # noqa: F401,F403
from core.errors import pydantic_message  # noqa: F401
