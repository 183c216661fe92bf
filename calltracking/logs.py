"""structlog set-up: JSON lines for machines, a console renderer for a person at a terminal.

Call ids travel in contextvars (`bind_call`), so every line logged while a call is handled carries it
without being passed by hand. Libraries that log through the standard library (aiohttp, asyncio,
panoramisk, alembic) go through the same renderer, so every line is one JSON object, a traceback
included (as its `exception` field).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import structlog

from calltracking.config import LogSettings

# Set on the one handler this module puts on the root logger, so configuring again replaces it.
_OURS = "_calltracking_handler"


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    level = logging.getLevelNamesMapping().get(settings.level.upper(), logging.INFO)
    use_console = settings.format == "console" or (settings.format == "auto" and out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
                structlog.stdlib.ExtraAdder(allow=("error",)),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    # Libraries are heard from warnings up, whatever the service's own level.
    handler.setLevel(max(level, logging.WARNING))
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(handler.level)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _MalformedRequestFilter) for f in server.filters):
        server.addFilter(_MalformedRequestFilter())
    logging.captureWarnings(True)


class _MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a request line or header over its limit, a NUL in a
    header) as an error with a traceback. That is the client's mistake, one anyone can make without a
    token: it becomes one warning line with the parser's message, and no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_parse_error(error):
            record.msg, record.args = "http_request_malformed", ()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
            record.error = f"{type(error).__name__}: {getattr(error, 'message', error)}"[:300]
        return True


def _is_parse_error(error: BaseException) -> bool:
    """aiohttp's HttpProcessingError (BadHttpMessage, LineTooLong, ...), known by name so that logging
    does not import aiohttp for commands that never serve HTTP."""
    return any(
        cls.__module__ == "aiohttp.http_exceptions" and cls.__name__ == "HttpProcessingError"
        for cls in type(error).__mro__
    )


@contextmanager
def bind_call(pbx: str, call_id: str) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(pbx=pbx, call_id=call_id):
        yield
