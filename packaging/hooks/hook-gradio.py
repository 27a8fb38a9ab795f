"""Gradio reads its own ``.py`` sources at import (``inspect`` on components and templates),
so it is collected as source files, not bytecode in the archive; its frontend, templates and
other data files are collected by ``build.spec`` (``collect_data_files``)."""

module_collection_mode = {"gradio": "py"}
