"""The REST surface (seed-compatible routes, health, metrics), users, API keys, quotas and
retention. Importing this package is cheap: routes are built inside ``include_routes``.

    attach(studio) -> ApiRuntime          Studio.__init__: quotas hook, key/group tables, sweeper
    include_routes(app, studio) -> dict   create_app, before Gradio is mounted at "/": adds the
                                          security middleware and every route; returns the keyword
                                          arguments for ``gr.mount_gradio_app`` (auth_dependency)
"""

from __future__ import annotations


def attach(studio):
    from .runtime import ApiRuntime

    return ApiRuntime(studio)


def include_routes(app, studio) -> dict:
    from .routes import include
    from .uploads import build as team_uploads  # team mode: workers deliver results (app.team)

    app.include_router(team_uploads(studio))
    return include(app, studio)
