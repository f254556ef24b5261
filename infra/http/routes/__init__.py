"""One module per resource; each defines `router` (an `APIRouter(route_class=FleetRoute)`).

`create_api` includes every module of this package, so a new resource is one new module.
A route is a plain `def` with `Annotated` dependencies (infra/http/deps.py), its own
schemas (infra/http/schemas/), a one-line docstring naming its rule IDs, no `try` (errors
become problem details in infra/http/errors.py) and no role checks (the command or the
scope does them). See routes/partners.py.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """The `router` of every module of this package, by module name."""
    found = []
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        loaded = importlib.import_module(f"{__name__}.{module}")
        router = getattr(loaded, "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"infra/http/routes/{module}.py defines no `router`.")
        found.append(router)
    return found
