"""Every route and every UI event handler carries an access decision (app/access.py).

A new route or handler without one fails here: decide public / user / admin, and check it in
the service it calls."""

from __future__ import annotations

import inspect

from fastapi.routing import APIRoute

from app.access import ACCESS_KINDS, access_of

DECIDING_DEPENDENCIES = {"ctx": "user", "_admin": "admin"}  # the REST layer's caller lookups


def api_routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)
        elif hasattr(route, "routes") and not hasattr(route, "app"):
            yield from api_routes(route.routes)


def test_every_rest_route_has_an_access_decision(make_api):
    api = make_api()
    missing, seen = [], 0
    for route in api_routes(api.app.routes):
        seen += 1
        deps = {d.call.__name__ for d in route.dependant.dependencies}
        if deps & set(DECIDING_DEPENDENCIES) or access_of(route.endpoint) in ACCESS_KINDS:
            continue
        missing.append(f"{sorted(route.methods)} {route.path} ({route.endpoint.__module__}.{route.endpoint.__name__})")
    assert seen > 30
    assert not missing, "routes without an access decision:\n" + "\n".join(missing)


def test_every_gradio_handler_has_an_access_decision(make_api):
    api = make_api()
    missing, seen = [], 0
    for index, block_fn in api.app.state.demo.fns.items():
        fn = block_fn.fn
        if fn is None:
            continue  # a pure front-end event (js only)
        fn = getattr(getattr(fn, "__self__", None), "fn", fn)  # gr.render's Renderable.apply
        seen += 1
        if access_of(fn) not in ACCESS_KINDS:
            real = inspect.unwrap(fn)
            missing.append(f"fn_index {index}: {getattr(real, '__module__', '?')}.{getattr(real, '__qualname__', real)}")
    assert seen > 40
    assert not missing, "handlers without an access decision:\n" + "\n".join(missing)
