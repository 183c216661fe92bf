"""structlog set-up: JSON lines for machines, a console renderer for a person at a terminal.

Call ids travel in contextvars (`bind_call`), so every line logged while a call is handled carries it
without being passed by hand.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import structlog

from calltracking.settings import LogSettings


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    level = logging.getLevelNamesMapping().get(settings.level.upper(), logging.INFO)
    use_console = settings.format == "console" or (settings.format == "auto" and out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (panoramisk, alembic) go to the same stream.
    logging.basicConfig(
        stream=out, level=max(level, logging.WARNING), format="%(name)s %(levelname)s %(message)s"
    )


@contextmanager
def bind_call(pbx: str, call_id: str) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(pbx=pbx, call_id=call_id):
        yield
