"""The run's web server (DESIGN §3 ``web/``): the live preview page, the annotated MJPEG video,
server-sent events, Prometheus metrics and a health check, on the run's own event loop.

It knows the run only through what any consumer sees: frame taps (each camera's latest frame
and its :class:`~affectstream.types.FrameResult`), the published messages and the ``stats``
payload; never detectors or stream internals. Entry point: :func:`affectstream.web.service.serve`.
"""
