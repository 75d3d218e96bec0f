"""`metrolex serve`: the scheduler and the HTTP API in one long-running process.

Logs are JSON lines on stderr (structlog, and the standard library's loggers — uvicorn,
APScheduler — through the same renderer). SIGTERM and SIGINT stop it gracefully: uvicorn
finishes the requests in flight, the scheduler lets a running sweep finish and gives up the
leadership (a standby elsewhere takes over), and the store is closed.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading

import structlog

from adapters.logging_setup import configure_logging

EXIT_OK, EXIT_PROBLEM = 0, 1
_HANDLED = (signal.SIGINT, signal.SIGTERM)


def _stdlib_logs_as_json_lines() -> None:
    """uvicorn and APScheduler log through `logging`: render their records as JSON lines too."""
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(ensure_ascii=False)],
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                           structlog.processors.TimeStamper(fmt="iso", utc=True)])
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(formatter)


class _StopSignals:
    """Our SIGTERM/SIGINT handlers around the server's own: a signal before uvicorn runs stops it
    as soon as it starts, and the signal uvicorn re-raises after its shutdown lands here instead of
    killing the process before the scheduler and the store are closed."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.server = None
        self._previous: dict = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in _HANDLED}
        return self

    def _handle(self, sig: int, _frame) -> None:
        if sig not in self.received:
            self.received.append(sig)
        if self.server is not None:
            self.server.should_exit = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def serve(app, host: str = "127.0.0.1", port: int = 8000, scheduler: bool = True) -> int:
    """Run the HTTP API on host:port, and the scheduler unless `scheduler` is False; returns the exit code."""
    configure_logging(json_lines=True, level="INFO")
    _stdlib_logs_as_json_lines()
    log = structlog.get_logger("metrolex.service")
    try:
        from adapters.api import create_app
    except ImportError as exc:
        log.error("serve.api_unavailable", error=str(exc))
        print(f"metrolex serve: the HTTP API is not available in this installation (adapters.api: {exc}); "
              "nothing was started", file=sys.stderr)
        return EXIT_PROBLEM
    import uvicorn

    service = None
    with _StopSignals() as stop:
        try:
            try:
                api = create_app(app)
            except Exception as exc:
                log.exception("serve.api_failed")
                print(f"metrolex serve: could not build the HTTP API: {exc}", file=sys.stderr)
                return EXIT_PROBLEM
            if scheduler:
                from adapters.scheduling import SchedulerService
                try:
                    service = SchedulerService(app).start()
                    app.extras["scheduler"] = service  # health reports leader or standby
                except Exception as exc:
                    log.exception("serve.scheduler_failed")
                    print(f"metrolex serve: could not start the scheduler: {exc}", file=sys.stderr)
                    return EXIT_PROBLEM
            else:
                log.info("serve.scheduler_disabled", detail="API only; another process runs the scheduler")
            server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_config=None, lifespan="on", access_log=False,
                                                   timeout_graceful_shutdown=10))
            stop.server = server
            if stop.received:
                server.should_exit = True
            log.info("serve.starting", host=host, port=port, scheduler=scheduler)
            try:
                server.run()
            except SystemExit as exc:  # uvicorn exits when it cannot bind or its lifespan start-up fails
                code = exc.code if isinstance(exc.code, int) else EXIT_PROBLEM
                log.error("serve.http_failed", host=host, port=port, exit_code=code)
                return code or EXIT_PROBLEM
            return EXIT_OK
        finally:
            if service is not None:
                service.shutdown()
            app.close()
            log.info("serve.stopped", signals=[signal.Signals(s).name for s in stop.received])
