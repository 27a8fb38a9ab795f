"""The bottom layer: errors, image checks, hashing, atomic file writes and media helpers.

Everything else (``app``, ``engines``, ``profiles``) may import from here; ``core`` imports
nothing from them.
"""
