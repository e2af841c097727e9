"""A uvicorn server that runs inside an asyncio program which owns the signals."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """uvicorn's Server without its own SIGINT/SIGTERM handling: the host program
    decides when to stop (``should_exit = True``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
