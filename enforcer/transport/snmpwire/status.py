"""PDU error-status values (RFC 3416 section 3): the one list of their names, used by the
clients (errors name the status), the profiles (``not_present`` / ``full_errors`` are
checked against it) and the lab's agent."""

from __future__ import annotations

import enum


class ErrorStatus(enum.IntEnum):
    noError = 0
    tooBig = 1
    noSuchName = 2
    badValue = 3
    readOnly = 4
    genErr = 5
    noAccess = 6
    wrongType = 7
    wrongLength = 8
    wrongEncoding = 9
    wrongValue = 10
    noCreation = 11
    inconsistentValue = 12
    resourceUnavailable = 13
    commitFailed = 14
    undoFailed = 15
    authorizationError = 16
    notWritable = 17
    inconsistentName = 18


def status_name(status: int) -> str:
    """The RFC 3416 name of an error-status (``status N`` for a number it does not have)."""
    try:
        return ErrorStatus(status).name
    except ValueError:
        return f"status {status}"
