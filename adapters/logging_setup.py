"""structlog, configured in one place: readable lines on a terminal, JSON lines for the service."""
from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(json_lines: bool = False, level: str = "WARNING") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=getattr(logging, level, logging.WARNING))
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines
                else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors + [renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level, logging.WARNING)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
