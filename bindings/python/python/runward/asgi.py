"""An ASGI app answering runward's probe endpoints, for FastAPI, Starlette or any ASGI server.

```python
from fastapi import FastAPI
from runward.asgi import HealthApp

app = FastAPI()
app.mount("/", HealthApp(health))          # or app.mount("/health", ...)
```

Every answer comes from :meth:`runward.Health.answer`, so it matches the standalone server.
Answers are read from the snapshot; only an on-demand check whose result is older than its TTL
runs first, once for all concurrent requests and at most for its timeout. The checks are
started on the first request. Requests wait for the host's event loop; when that loop may be blocked, use
:meth:`runward.Health.serve` instead, which answers from runward's own threads.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Awaitable, Callable, Dict, List, MutableMapping, Optional, Tuple

from ._runward import Health

__all__ = ["HealthApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _is_loopback(client: Optional[Tuple[str, int]]) -> bool:
    if not client:
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


class HealthApp:
    """ASGI app for ``/livez``, ``/readyz``, ``/readyz/<check>``, ``/startupz``, ``/healthz``
    and ``/metrics``.

    ``details`` (``loopback``, ``token``, ``public``, ``none``) and ``token`` decide who sees
    check details; by default the configuration's ``[server]`` policy and token apply.
    Mounted under a prefix, the app strips the ASGI ``root_path`` from the path.
    """

    def __init__(self, health: Health, *, details: Optional[str] = None, token: Optional[str] = None) -> None:
        self.health = health
        self.details = details
        self.token = token
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not self._started:
            self.health.start()
            self._started = True
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await self._send(send, 405, [("allow", "GET, HEAD"), ("content-type", "text/plain; charset=utf-8")],
                             b"method not allowed\n")
            return
        path: str = scope.get("path", "/")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        query = scope.get("query_string", b"").decode("latin-1") or None
        authorization: Optional[str] = None
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                authorization = value.decode("latin-1")
                break
        status, headers, body = await self.health.answer(
            path,
            query,
            authorization,
            _is_loopback(scope.get("client")),
            details=self.details,
            token=self.token,
        )
        payload = body.encode("utf-8")
        headers = headers + [("content-length", str(len(payload)))]
        await self._send(send, status, headers, b"" if method == "HEAD" else payload)

    @staticmethod
    async def _send(send: Send, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
        raw: List[Tuple[bytes, bytes]] = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Dict[str, Any] = dict(await receive())
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
