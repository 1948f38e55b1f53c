"""What a command shows on the terminal: log lines (text or JSON), notes for people, progress.

The CLI decides once per command (``--quiet``, ``--log-format``, ``--progress``) and enters
:func:`session`; code deep in a run (a model download, a file's progress bar) asks
:func:`current` instead of having the choice threaded through every call. The choice lives in a
:class:`contextvars.ContextVar`, so it is scoped to the command that set it (two in-process
calls of the CLI never see each other's), and asyncio tasks and ``asyncio.to_thread`` inherit
it. Progress goes to stderr and is off when stderr is not a terminal unless forced, so pipes,
log files and test output stay clean; stdout is never touched here.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True, slots=True)
class Terminal:
    """One command's terminal choices."""

    quiet: bool = False
    """Warnings and errors only: no progress, no notes."""
    log_format: LogFormat = "text"
    force_progress: bool = False
    """Progress bars even when stderr is not a terminal (``--progress``)."""

    @property
    def json(self) -> bool:
        return self.log_format == "json"

    @property
    def progress(self) -> bool:
        """Whether progress bars are drawn: never quiet or in JSON mode (stderr is then one JSON
        object per line); else on a terminal, or when forced."""
        if self.quiet or self.json:
            return False
        return self.force_progress or _stderr_is_tty()

    def console(self) -> Console:
        """A rich console on stderr for progress (forced to draw with ``--progress``)."""
        from rich.console import Console

        return Console(stderr=True, force_terminal=True if self.force_progress else None)

    def note(self, text: str, logger: str = "affectstream") -> None:
        """A line for the person running the command (a summary, where a file went): plain on
        stderr, a JSON ``info`` record with ``--log-format json``, nothing with ``--quiet``."""
        if self.quiet:
            return
        if self.json:
            _write_json(logging.INFO, logger, text)
        else:
            print(text, file=sys.stderr)

    def error(self, text: str, logger: str = "affectstream") -> None:
        """The command's one-line error (always shown)."""
        if self.json:
            _write_json(logging.ERROR, logger, text)
        else:
            print(text, file=sys.stderr)


_CURRENT: contextvars.ContextVar[Terminal | None] = contextvars.ContextVar(
    "affectstream_terminal", default=None)


def current() -> Terminal:
    """The running command's choices; outside a command, the defaults (progress on a TTY)."""
    return _CURRENT.get() or Terminal()


@contextlib.contextmanager
def session(term: Terminal) -> Iterator[Terminal]:
    token = _CURRENT.set(term)
    try:
        yield term
    finally:
        _CURRENT.reset(token)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


# --- log lines ------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (epoch s), ``level``, ``logger``, ``message`` (and
    ``exc`` with a traceback). Messages are the library's own, which redact credentials in
    URLs before they are logged."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": round(record.created, 3),
                               "level": record.levelname.lower(), "logger": record.name,
                               "message": record.getMessage()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def _write_json(level: int, logger: str, text: str) -> None:
    doc = {"ts": round(time.time(), 3), "level": logging.getLevelName(level).lower(),
           "logger": logger, "message": text}
    print(json.dumps(doc, ensure_ascii=False), file=sys.stderr, flush=True)


def setup_logging(term: Terminal, verbose: int) -> None:
    """Root logging for a command: warnings by default, ``-v`` info, ``-vv`` debug, warnings
    and errors only with ``--quiet``; JSON lines with ``--log-format json``."""
    level = logging.WARNING if term.quiet else logging.WARNING - 10 * min(verbose, 2)
    if not term.json:
        logging.basicConfig(level=level, format=TEXT_FORMAT)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # force: a text handler from an earlier in-process call must not print plain lines
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # Python warnings become JSON records too
