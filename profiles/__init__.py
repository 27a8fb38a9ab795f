"""Projects as plain YAML: schema, safe loading, style presets, prompt composition, samples.

    ProjectStore(root)          list / get (reloaded when a file changes) / create / duplicate / edit
    load_project(folder)        one folder → Project (config, characters, scenes), cross-checked
    compose(config, chars, scene) -> (prompt, negative)   pure prompt composition
    export_zip / import_zip     archives (zip-slip and zip-bomb safe)
    install_samples(projects)   first start: copy the built-in xianxia sample

Every problem with a file is an ``core.errors.ProfileError`` naming the file, the field and the fix.
"""

from .archive import export_zip, import_zip
from .project import Project, load_project
from .schema import Character, ProjectConfig, Scene
from .store import ProjectStore
from .styles import STYLES, compose

__all__ = ["STYLES", "Character", "Project", "ProjectConfig", "ProjectStore", "Scene", "compose", "export_zip",
           "import_zip", "load_project"]
