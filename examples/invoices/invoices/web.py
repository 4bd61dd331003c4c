"""A small HTTP front end (Starlette): each request goes through vdata.

    GET   /invoices/{id}        200 the invoice | 404
    GET   /customers/{customer}/invoices?cursor=&limit=
                                200 {"items": [...], "next_cursor": ...} | 422 bad cursor
    POST  /invoices             201 the new invoice | 409 number taken | 422 bad body
    PATCH /invoices/{id}/total  200 the invoice | 404 | 409 stale version | 422
    GET   /health               200 | 503, vdata's health report

Errors are JSON ``{"error": <vdata class>, "message": ...}``: a vdata
message never holds a secret, so it can be shown. 503 (the database is
unavailable: breaker open, retries exhausted) carries ``Retry-After``; 500
is the service's own fault (ConfigurationError: e.g. no cursor signing key).
Run it with ``VDATA_DSN=... uvicorn invoices.web:app``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
import vdata
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from invoices.models import NewInvoice
from invoices.repositories import AREAS, Invoices


class TotalChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``PATCH /invoices/{id}/total``."""

    total_cents: Annotated[int, msgspec.Meta(ge=0)]
    expected_version: Annotated[int, msgspec.Meta(ge=1)]


# The first class that matches decides the status.
_STATUS: tuple[tuple[type[vdata.VdataError], int], ...] = (
    (vdata.ConfigurationError, 500),  # a ValidationError, but not the client's
    (vdata.NotFoundError, 404),
    (vdata.StaleVersionError, 409),
    (vdata.ConflictError, 409),
    (vdata.ValidationError, 422),
    (vdata.UnavailableError, 503),
    (vdata.TransientError, 503),
    (vdata.QueryTimeoutError, 503),
)


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def _vdata_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, vdata.VdataError)
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
    body: dict[str, object] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, vdata.ConflictError):
        body["constraint"] = exc.constraint
    headers = None
    if isinstance(exc, vdata.UnavailableError):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after or 1)))}
    return _json(body, status, headers)


async def _bad_body(request: Request, exc: Exception) -> Response:
    return _json({"error": "ValidationError", "message": str(exc)}, 422)


class Service:
    """The routes, and the Database they run on (opened by the app's lifespan)."""

    def __init__(self, db: vdata.Database | None = None, settings: vdata.Settings | None = None):
        self._db = db
        self._settings = settings

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self._db is not None:  # given (tests): its owner closes it
            yield
            return
        async with await vdata.connect(settings=self._settings, areas=AREAS, bundled=False) as db:
            self._db = db
            yield

    @property
    def db(self) -> vdata.Database:
        if self._db is None:
            raise vdata.UnavailableError("the service is not started")
        return self._db

    async def get_invoice(self, request: Request) -> Response:
        invoice = await self.db.area(Invoices).get(request.path_params["invoice_id"])
        return _json(invoice)

    async def list_invoices(self, request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            raise vdata.ValidationError("limit must be an integer", field="limit") from None
        page = await self.db.area(Invoices).list_by_customer(
            request.path_params["customer"],
            cursor=request.query_params.get("cursor"),
            limit=limit,
        )
        return _json(page)

    async def create_invoice(self, request: Request) -> Response:
        new = msgspec.json.decode(await request.body(), type=NewInvoice)
        actor = request.headers.get("x-actor", "web")
        invoice = await self.db.area(Invoices).create(new, actor=actor)
        return _json(invoice, 201, {"Location": f"/invoices/{invoice.id}"})

    async def set_total(self, request: Request) -> Response:
        change = msgspec.json.decode(await request.body(), type=TotalChange)
        invoice = await self.db.area(Invoices).set_total(
            request.path_params["invoice_id"],
            change.total_cents,
            expected_version=change.expected_version,
            actor=request.headers.get("x-actor", "web"),
        )
        return _json(invoice)

    async def health(self, request: Request) -> Response:
        report = await self.db.health()
        return _json(report, 200 if report.ok else 503)


def create_app(
    db: vdata.Database | None = None, settings: vdata.Settings | None = None
) -> Starlette:
    """Return the ASGI app: on *db* if given, else on a Database opened at start-up."""
    service = Service(db, settings)
    return Starlette(
        routes=[
            Route("/invoices/{invoice_id:int}", service.get_invoice, methods=["GET"]),
            Route("/customers/{customer}/invoices", service.list_invoices, methods=["GET"]),
            Route("/invoices", service.create_invoice, methods=["POST"]),
            Route("/invoices/{invoice_id:int}/total", service.set_total, methods=["PATCH"]),
            Route("/health", service.health, methods=["GET"]),
        ],
        exception_handlers={
            vdata.VdataError: _vdata_error,
            msgspec.ValidationError: _bad_body,
            msgspec.DecodeError: _bad_body,
        },
        lifespan=service.lifespan,
    )


app = create_app()  # settings from VDATA_* at start-up
