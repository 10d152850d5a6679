"""ASGI middleware of the web app: a bounded request body, request metrics, safe headers.

``BodyLimit``: a request whose Content-Length is over ``max_message`` gets
413 before its body is read; a body streamed without a length is counted as
it arrives and refused the same way when it passes the bound, so no request
makes the process hold more than ``max_message`` bytes of body.

``RequestMetrics``: Prometheus request counts and latency by method, route
*template* (``/api/v1/devices/{key}``, never the raw path: peers must not
grow the label set) and status.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "BodyLimit",
    "RequestMetrics",
    "SameOrigin",
    "SecurityHeaders",
    "WebMetrics",
]

UNMATCHED = "unmatched"


class BodyLimit:
    """413 for a request body over ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(status_code=413, detail="request body too large")
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await _too_large(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse({"detail": "request body too large"}, status_code=413)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


class WebMetrics:
    """The app's Prometheus registry and its request metrics (one registry per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "offhook_web_requests",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "offhook_web_request_seconds",
            "Time to answer an HTTP request, by method and route template",
            ("method", "route"),
            registry=self.registry,
        )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """Counts and times every HTTP request into ``metrics``, labelled by the served
    path template of the route it matched (``template``)."""

    def __init__(self, app: ASGIApp, metrics: WebMetrics) -> None:
        self.app = app
        self.metrics = metrics

    @staticmethod
    def template(scope: Scope) -> str:
        """The served path template of the route a request matched (``UNMATCHED`` for none).

        The matched route's own template lacks the prefix its router was
        included under; that prefix is what precedes, in the request's path,
        the route's template filled in with the request's path parameters.
        """
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        own = getattr(route, "path_format", None) or getattr(route, "path", None)
        if not isinstance(own, str) or not own:
            return UNMATCHED
        path = str(scope.get("path", ""))
        params = scope.get("path_params") or {}
        try:
            filled = own.format_map({k: str(v) for k, v in params.items()})
        except (KeyError, ValueError, IndexError):
            return own
        if not isinstance(route, APIRoute) or not path.endswith(filled):
            return own
        return path[: len(path) - len(filled)] + own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            template = self.template(scope)
            method = scope.get("method", "")
            method = method if method in _METHODS else "OTHER"
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)


HTMX_INDICATOR_STYLE = (
    ".htmx-indicator{opacity:0;visibility: hidden} "
    ".htmx-request .htmx-indicator, .htmx-request.htmx-indicator"
    "{opacity:1;visibility: visible;transition: opacity 200ms ease-in}"
)
"""The one ``<style>`` element the vendored htmx (2.0) adds to a page; allowed by its hash."""


def _style_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",  # the vendored htmx, nothing inline, no eval
        f"style-src 'self' {_style_hash(HTMX_INDICATOR_STYLE)}",
        "style-src-attr 'unsafe-inline'",  # style="" attributes of the templates
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
"""Only this origin's scripts and styles: an injected ``<script>`` or handler never runs."""

_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """CSP (self only), nosniff, no framing, same-origin referrers; API answers never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/api/")

        async def add(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                # One policy for the whole app: a route's own CSP is replaced.
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() != b"content-security-policy"
                ]
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _HEADERS if h[0] not in present)
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site(scope: Scope) -> bool:
    """Whether the browser says this request comes from another site.

    ``Sec-Fetch-Site: cross-site``, or an ``Origin`` (``null`` included)
    whose host and port are not the ``Host`` asked. Scripts with a token send
    neither header.
    """
    headers = {name: value for name, value in scope.get("headers", ()) if name in _ORIGIN_HEADERS}
    if headers.get(b"sec-fetch-site") == b"cross-site":
        return True
    origin = headers.get(b"origin")
    if origin is None:
        return False
    netloc = urlsplit(origin.decode("latin-1")).netloc
    return origin == b"null" or not netloc or netloc != headers.get(b"host", b"").decode("latin-1")


_ORIGIN_HEADERS = frozenset({b"origin", b"host", b"sec-fetch-site"})


class SameOrigin:
    """403 for a state-changing request (POST, PUT, PATCH, DELETE) from another site.

    Beside the session's CSRF token (``web.deps``): a login posted from
    another site (login CSRF: the victim signed in as the attacker) has no
    session to hold a token yet, and JSON sent without a Content-Type is
    read as JSON.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        unsafe = scope["type"] == "http" and scope.get("method") not in _SAFE_METHODS
        if unsafe and cross_site(scope):
            response = JSONResponse({"detail": "cross-site request refused"}, status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
