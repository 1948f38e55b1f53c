"""The aiohttp application and its listening sites: the preview (every endpoint) and/or a
metrics-only server (``/metrics``, ``/healthz``), on the run's own event loop."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web

from affectstream.errors import ConfigError
from affectstream.web import mjpeg, page
from affectstream.web.hub import Hub
from affectstream.web.metrics import CONTENT_TYPE
from affectstream.webconfig import PreviewConfig

log = logging.getLogger("affectstream.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Routes:
    """Every endpoint, bound to the run's hub."""

    def __init__(self, hub: Hub, preview: PreviewConfig) -> None:
        self.hub = hub
        self.cfg = preview
        self.encoders = {cid: mjpeg.FrameEncoder(view, preview.jpeg_quality, hub.events)
                         for cid, view in hub.cameras.items()}

    def _camera(self, request: web.Request) -> str:
        cid = request.match_info.get("camera")
        if cid is None:  # the top-level routes are the only camera's
            cid = next(iter(self.hub.cameras))
        if cid not in self.hub.cameras:
            raise web.HTTPNotFound(text=f"no camera {cid!r}; see / for the list")
        return cid

    async def index(self, request: web.Request) -> web.StreamResponse:
        if len(self.hub.cameras) > 1:
            return page.index_page(list(self.hub.cameras))
        return page.camera_page(self._camera(request), "")

    async def camera(self, request: web.Request) -> web.StreamResponse:
        cid = self._camera(request)
        return page.camera_page(cid, f"/camera/{cid}")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        cid = self._camera(request)
        return await mjpeg.stream(request, self.encoders[cid], self.hub.cameras[cid],
                                  self.hub.metrics, self.cfg.max_fps,
                                  lambda: self.hub.events.closing)

    async def events(self, request: web.Request) -> web.StreamResponse:
        # /events carries every camera; /camera/{id}/events one
        cid = self._camera(request) if "camera" in request.match_info else None
        return await self.hub.events.stream(request, cid, self.hub.replay(cid))

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.hub.metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE})

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        health = self.hub.health()
        return web.json_response(health, status=200 if health["status"] == "ok" else 503)

    async def asset(self, request: web.Request) -> web.StreamResponse:
        return page.asset(request.match_info["name"])


def application(routes: Routes, *, preview: bool) -> web.Application:
    app = web.Application()
    table: list[tuple[str, Handler]] = [("/metrics", routes.metrics),
                                        ("/healthz", routes.healthz)]
    if preview:
        table += [("/", routes.index), ("/stream.mjpg", routes.stream),
                  ("/events", routes.events), ("/static/{name}", routes.asset),
                  ("/camera/{camera}", routes.camera),
                  ("/camera/{camera}/stream.mjpg", routes.stream),
                  ("/camera/{camera}/events", routes.events)]
    for path, handler in table:
        app.router.add_get(path, handler)
    return app


class Site:
    """One listening server; ``start`` fails with a one-line error when it cannot listen."""

    def __init__(self, app: web.Application, host: str, port: int, what: str, flag: str
                 ) -> None:
        # streams end when the hub closes; a second is plenty for them to notice
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        self._host, self._port = host, port
        self._what, self._flag = what, flag
        self.url = ""

    async def start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(f"{self._what}: cannot listen on {self._host}:{self._port} "
                              f"({exc.strerror or exc}); choose another port with "
                              f"{self._flag}") from None
        port = self._runner.addresses[0][1] if self._runner.addresses else self._port
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"http://{host}:{port}/"
        # the address is what the user came for: on stderr like the run's other summaries
        print(f"affectstream: {self._what} on {self.url}", file=sys.stderr, flush=True)
        return self.url

    async def close(self) -> None:
        await self._runner.cleanup()
