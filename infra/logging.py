"""structlog, configured once: key-value events with contextvars (principal, correlation id).

Log lines go to standard error, so a verb's output on standard output (`audit consent`,
`token issue`, `config`) stays clean to pipe or redirect."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from typing import TextIO

import structlog
from structlog.typing import ExcInfo

from infra.settings import Settings

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(settings: Settings) -> None:
    """Configure structlog for the whole process (idempotent)."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[settings.log_level]),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )


def _stderr_logger(*_args: object) -> StderrLogger:
    return StderrLogger()


class StderrLogger:
    """Writes each rendered line to `sys.stderr` as it is at the time of writing (a test's
    or a CLI runner's capture included), one line at a time across threads."""

    _lock = threading.Lock()

    def msg(self, message: str) -> None:
        """Write one rendered log line."""
        with self._lock:
            stream = sys.stderr
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = error = err = critical = exception = msg


def _traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    """Tracebacks without the frames' local variables: those can hold a connection string
    with its password, or a cPIN on its way to being verified (structlog shows them with
    rich installed, by default)."""
    sio.write("\n" + "".join(traceback.format_exception(*exc_info)))
