"""The portal's pages, one module per area; each defines `router` (an `APIRouter`).

`create_portal` includes every module of this package. A page is a plain `def` taking
`PortalDep` (infra/web/deps.py), making its scope with handlers.access and calling the same
queries and commands as the HTTP API; no SQL, no role check, no `try` except where a
refusal is shown next to what was refused. See pages/customers.py.
"""
