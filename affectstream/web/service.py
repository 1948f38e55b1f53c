"""The web server's life in a run: :func:`serve` builds the hub, metrics and sites from the
config, starts them before the cameras and closes them after (``app.Runner`` calls it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from affectstream.config import Config
from affectstream.publish.sinks import Sink
from affectstream.types import FrameTap
from affectstream.urls import redact_url
from affectstream.web.events import Broadcaster
from affectstream.web.hub import Hub, HubSink
from affectstream.web.metrics import Metrics
from affectstream.web.server import Routes, Site, application


@dataclass
class WebServices:
    hub: Hub
    urls: list[str] = field(default_factory=list)

    @property
    def taps(self) -> list[FrameTap]:
        return [self.hub.tap, self.hub.metrics.tap]

    @property
    def sinks(self) -> list[Sink]:
        return [HubSink(self.hub)]


@contextlib.asynccontextmanager
async def serve(cfg: Config) -> AsyncIterator[WebServices]:
    """The preview and/or metrics servers of ``cfg``, listening until the block ends."""
    metrics = Metrics()
    events = Broadcaster(cfg.preview.client_queue, on_drop=metrics.events_dropped.inc)
    cameras = [(c.camera_id, redact_url(str(c.source.url))) for c in cfg.camera_configs()]
    hub = Hub(cameras, metrics, events)
    routes = Routes(hub, cfg.preview)
    sites: list[Site] = []
    if cfg.preview.port is not None:
        sites.append(Site(application(routes, preview=True), cfg.preview.host,
                          cfg.preview.port, "preview", "--preview"))
    if cfg.metrics.port is not None:
        sites.append(Site(application(routes, preview=False), cfg.metrics.host,
                          cfg.metrics.port, "metrics", "--metrics"))
    services = WebServices(hub)
    async with contextlib.AsyncExitStack() as stack:
        for site in sites:
            services.urls.append(await site.start())
            stack.push_async_callback(site.close)
        stack.callback(events.close)  # first: the streams end, then the sites close
        yield services
