"""Engines: one contract (``base``), one file per engine, a static registry (``registry``)."""
