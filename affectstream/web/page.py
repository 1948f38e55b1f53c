"""The preview page and the index of cameras: static files shipped in ``web/static`` (no
external requests), with the camera and its base path filled in."""

from __future__ import annotations

import html
import json
from importlib import resources

from aiohttp import web

_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
ASSETS = ("preview.js", "preview.css")


def _static(name: str) -> str:
    return resources.files("affectstream.web").joinpath("static", name).read_text("utf-8")


def camera_page(camera: str, base: str) -> web.Response:
    """The live page of one camera; ``base`` is where its stream and events are ("" or
    ``/camera/{id}``)."""
    text = (_static("page.html").replace("{{CAMERA}}", html.escape(camera))
            .replace("{{BASE}}", html.escape(base)))
    return web.Response(text=text, content_type="text/html", headers=_NO_STORE)


def index_page(cameras: list[str]) -> web.Response:
    items = "\n".join(
        f'<li><a href="/camera/{html.escape(c)}">{html.escape(c)}</a> '
        f'<img class="thumb" alt="{html.escape(c)}" src="/camera/{html.escape(c)}/stream.mjpg">'
        "</li>" for c in cameras)
    text = (_static("index.html").replace("{{CAMERAS}}", items)
            .replace("{{CAMERA_IDS}}", html.escape(json.dumps(cameras))))
    return web.Response(text=text, content_type="text/html", headers=_NO_STORE)


def asset(name: str) -> web.Response:
    if name not in ASSETS:
        raise web.HTTPNotFound()
    suffix = name[name.rfind("."):]
    return web.Response(text=_static(name), content_type=_TYPES[suffix])


_NO_STORE = {"Cache-Control": "no-store"}
