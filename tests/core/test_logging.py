"""log_rendered (the access log's line, rendered once) against structlog's own pipeline."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from apps.core.logging import StructuredStreamHandler, log_rendered, logging_config


@pytest.fixture
def configured() -> Iterator[None]:
    """The project's logging as gunicorn and Django apply it, restored afterwards."""
    from django.conf import settings

    yield
    structlog.contextvars.clear_contextvars()
    logging.config.dictConfig(settings.LOGGING)


def _configure(json_format: bool) -> tuple[logging.Logger, io.StringIO]:
    logging.config.dictConfig(logging_config(json=json_format, level="INFO"))
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, StructuredStreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    logger = logging.getLogger("bench.log.check")
    logger.setLevel(logging.NOTSET)  # loggers outlive dictConfig: undo another test's level
    return logger, stream


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_rendered_line_is_the_line_structlog_writes(configured: None) -> None:
    logger, stream = _configure(json_format=True)
    structlog.contextvars.bind_contextvars(request_id="req_1", tenant="alpha")
    fields = {"user": 7, "method": "GET", "path": "/api/v1/ü", "status": 200, "duration_ms": 1.5}
    structlog.get_logger("bench.log.check").info("request", **fields)
    log_rendered(logger, logging.INFO, "request", **fields)
    by_structlog, rendered = _lines(stream)
    assert by_structlog.pop("timestamp") <= rendered.pop("timestamp")  # type: ignore[operator]
    assert rendered == by_structlog
    assert rendered["request_id"] == "req_1" and rendered["logger"] == "bench.log.check"


def test_a_level_turned_off_writes_nothing(configured: None) -> None:
    logger, stream = _configure(json_format=True)
    logger.setLevel(logging.WARNING)
    log_rendered(logger, logging.INFO, "request", status=200)
    assert stream.getvalue() == ""


def test_other_handlers_and_the_console_format_format_the_record(configured: None) -> None:
    logger, stream = _configure(json_format=False)
    log_rendered(logger, logging.INFO, "request", status=201)
    text = stream.getvalue()
    assert "request" in text and "status=201" in text and not text.lstrip().startswith("{")

    # A handler of another kind (a file, pytest's caplog) formats the record normally.
    logger, stream = _configure(json_format=True)
    other = io.StringIO()
    extra = logging.StreamHandler(other)
    extra.setFormatter(logging.getLogger().handlers[0].formatter)
    logger.addHandler(extra)
    log_rendered(logger, logging.INFO, "request", status=202)
    logger.removeHandler(extra)
    assert _lines(other)[0]["status"] == 202 == _lines(stream)[0]["status"]


def _gunicorn_logger(access_level: str | None = None) -> Any:
    import copy
    import runpy
    from pathlib import Path

    from gunicorn.config import Config  # type: ignore[import-untyped]

    settings = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    cfg = Config()
    for name, value in settings.items():
        if name in cfg.settings:
            cfg.set(name, copy.deepcopy(value))
    if access_level is not None:
        cfg.logconfig_dict["loggers"]["gunicorn.access"]["level"] = access_level
    return cfg.logger_class(cfg)


def test_gunicorn_builds_no_access_line_that_nothing_writes(configured: None) -> None:
    from platform_site.gunicorn_logger import GunicornLogger

    quiet = _gunicorn_logger()
    assert isinstance(quiet, GunicornLogger)
    assert quiet.access_log_enabled is False  # gunicorn.access at WARNING (gunicorn.conf.py)
    assert _gunicorn_logger(access_level="INFO").access_log_enabled is True
