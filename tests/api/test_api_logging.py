"""Logging: order_id from the context on every record, JSON lines, secret redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from enforcer.logging import order_context, setup_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    yield buf
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == "enforcer":
            root.removeHandler(h)


def test_json_lines_carry_order_id_and_extras(stream: io.StringIO) -> None:
    setup_logging("DEBUG", json_lines=True, stream=stream)
    log = logging.getLogger("enforcer.test")
    with order_context("ord_1"):
        log.info("pushed %s", "cmts1", extra={"device": "cmts1"})
    log.warning("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "pushed cmts1" and first["order_id"] == "ord_1"
    assert first["device"] == "cmts1" and first["level"] == "INFO"
    assert second["order_id"] is None


def test_secrets_are_redacted_everywhere(stream: io.StringIO) -> None:
    secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"
    setup_logging("INFO", secrets=[secret, "pw"], stream=stream)
    log = logging.getLogger("enforcer.test")
    log.info("configured %s", secret)
    log.info("pwned password")
    log.info("x", extra={"detail": f"url with {secret}"})
    try:
        raise ValueError(f"bad {secret}")
    except ValueError:
        log.exception("failed")
    out = stream.getvalue()
    assert secret not in out and out.count("<redacted>") >= 2
    assert "pwned password" in out  # secrets under 4 characters are ignored, not mangled


def test_text_format_and_reconfiguration(stream: io.StringIO) -> None:
    setup_logging("INFO", stream=io.StringIO())
    setup_logging("WARNING", stream=stream)  # replaces, does not add
    log = logging.getLogger("enforcer.test")
    log.info("hidden")
    with order_context("ord_2"):
        log.warning("shown")
    assert stream.getvalue().count("\n") == 1 and "[ord_2] shown" in stream.getvalue()
    assert sum(h.get_name() == "enforcer" for h in logging.getLogger().handlers) == 1
