"""What every request passes before a route sees it: the Host, the API key, the Content-Type, the body's real size.

A plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so that the body limit
counts the bytes actually received, chunked bodies included, and a route can still
hear its client disconnect. Errors are OpenAI-shaped JSON and never hold a path or a
stack trace.
"""

from __future__ import annotations

import hmac
import json
import re

OPEN_PATHS = ("/health", "/ready")  # the only routes that need no API key
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


class ApiError(Exception):
    """An answer other than 200, in OpenAI's error shape; a failure the server logged carries the `request_id` it is
    logged under."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        retry_after: int | None = None,
        request_id: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.retry_after = status, message, kind, code, retry_after
        self.request_id = request_id

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.kind, "param": None, "code": self.code}
        return json.dumps({"error": error | ({"request_id": self.request_id} if self.request_id else {})}).encode()

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", b"application/json")]
        if self.retry_after is not None:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        if self.request_id:
            headers.append((b"x-request-id", self.request_id.encode()))
        return headers


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text, found without parsing it (so no recursion).

    >>> json_depth(b'{"a": [1, {"b": "[[[["}]}')
    3
    """
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b'""', raw)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


class Guard:
    """ASGI middleware: Host check (without a key), API key, JSON Content-Type and a body limit on POST."""

    def __init__(self, app, api_key: str | None, max_body_bytes: int, allowed_hosts: tuple[str, ...] = ()):
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes
        self.allowed_hosts = {h.lower() for h in LOOPBACK_HOSTS + tuple(allowed_hosts)}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            self._check(scope, headers)
            if scope["method"] == "POST":
                receive = await self._buffered(receive)
        except ApiError as exc:
            return await send_error(send, exc)
        await self.app(scope, receive, send)

    def _check(self, scope, headers: dict) -> None:
        if not self.api_key and _hostname(headers.get("host", "")) not in self.allowed_hosts:
            # Without a key the server trusts this machine only; a web page could otherwise reach
            # it through a DNS name that resolves to 127.0.0.1 (DNS rebinding).
            raise ApiError(
                403,
                "the Host header names no loopback address; without an API key only localhost is "
                "served (adaptlab serve --allow-host NAME widens it)",
                "permission_error",
                "host_not_allowed",
            )
        if self.api_key and scope["path"] not in OPEN_PATHS:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
                raise ApiError(
                    401,
                    "missing or wrong API key (Authorization: Bearer ...)",
                    "authentication_error",
                    "invalid_api_key",
                )
        if (
            scope["method"] == "POST"
            and headers.get("content-type", "").split(";")[0].strip().lower() != "application/json"
        ):
            raise ApiError(
                415,
                "send the body as JSON with the header Content-Type: application/json",
                code="unsupported_media_type",
            )
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            raise ApiError(413, f"request body over {self.max_body_bytes} bytes", code="request_too_large")

    async def _buffered(self, receive):
        """Read the whole body, counting what arrives (chunked or not); hand the app a receive that replays it."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                raise ApiError(413, f"request body over {self.max_body_bytes} bytes", code="request_too_large")
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()  # after the body: the client's disconnect

        return replayed


def _hostname(host: str) -> str:
    """'localhost:8000' -> 'localhost'; '[::1]:8000' -> '[::1]'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def send_error(send, exc: ApiError) -> None:
    """Answer `exc` on a raw ASGI `send` (before any response has started)."""
    await send({"type": "http.response.start", "status": exc.status, "headers": exc.headers()})
    await send({"type": "http.response.body", "body": exc.body()})
