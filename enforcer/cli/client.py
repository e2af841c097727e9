"""HTTP client for the CLI: where the daemon is, the token, and turning HTTP failures
into clear messages and documented exit codes (see docs/api.md)."""

from __future__ import annotations

import os
import time
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer

from enforcer.config import load_settings, split_host_port
from enforcer.errors import ConfigError


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    CONNECTION = 3
    UNAUTHORIZED = 4
    FORBIDDEN = 5
    NOT_FOUND = 6
    INVALID = 7
    CONFLICT = 8
    TIMEOUT = 9
    SERVER = 10
    AUDIT_BROKEN = 11
    CONFIG = 12


_BY_STATUS = {401: Exit.UNAUTHORIZED, 403: Exit.FORBIDDEN, 404: Exit.NOT_FOUND,
              409: Exit.CONFLICT, 422: Exit.INVALID}


def fail(message: str, code: Exit) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(int(code))


def default_url(config: Path | None) -> str:
    """``ENFORCER_URL``, else ``http.listen`` from the config (or defaults)."""
    env = os.environ.get("ENFORCER_URL")
    if env:
        return env
    try:
        listen = load_settings(config).http.listen
    except ConfigError as e:
        fail(str(e), Exit.CONFIG)
    host, port = split_host_port(listen)
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard listen is reached locally
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Client:
    """A thin wrapper: one method per HTTP verb, errors -> exit codes."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        if not self.url.lower().startswith(("http://", "https://")):
            fail(f"the daemon URL must start with http:// or https:// (got {url!r}); "
                 "e.g. --url http://127.0.0.1:8080", Exit.USAGE)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None,
                params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, retry_busy: int = 0) -> Any:
        """``retry_busy``: how many times to wait out a 429 (its Retry-After, at most
        10 s each) before giving up; only for requests that are safe to repeat (GETs,
        POSTs with an Idempotency-Key)."""
        r = self._send(method, path, json=json, params=params, headers=headers)
        for _ in range(retry_busy):
            if r.status_code != 429:
                break
            try:
                wait = min(10.0, max(0.1, float(r.headers.get("retry-after", "1"))))
            except ValueError:
                wait = 1.0
            time.sleep(wait)
            r = self._send(method, path, json=json, params=params, headers=headers)
        if r.status_code < 400:
            return r.json() if r.content else None
        self._raise(r)

    def _send(self, method: str, path: str, *, json: Any, params: dict[str, Any] | None,
              headers: dict[str, str] | None) -> httpx.Response:
        try:
            return self._http.request(method, path, json=json, params=params,
                                      headers=headers)
        except httpx.ConnectError:
            fail(f"cannot connect to the enforcer at {self.url} (is `enforcer serve` "
                 "running? set --url or ENFORCER_URL)", Exit.CONNECTION)
        except httpx.TimeoutException:
            fail(f"no answer from {self.url} in time", Exit.CONNECTION)
        except httpx.HTTPError as e:
            fail(f"talking to {self.url} failed: {type(e).__name__}", Exit.CONNECTION)

    def _raise(self, r: httpx.Response) -> NoReturn:
        try:
            err = r.json()["error"]
            message, fields = str(err["message"]), err.get("fields") or {}
        except (ValueError, KeyError, TypeError):
            message, fields = r.text[:200] or r.reason_phrase, {}
        hints = {401: " (check --token / ENFORCER_TOKEN)",
                 403: " (your role may not do this)"}
        if r.status_code == 404 and httpx.URL(self.url).path not in ("", "/"):
            hints[404] = (f" (--url / ENFORCER_URL is {self.url}: give the daemon's base "
                          "URL, without a path, e.g. http://127.0.0.1:8080)")
        lines = [f"{r.status_code} {message}{hints.get(r.status_code, '')}"]
        lines += [f"  {k}: {v}" for k, v in fields.items()]
        if r.status_code == 429 and "retry-after" in r.headers:
            lines.append(f"  retry after {r.headers['retry-after']} s")
        fail("\n".join(lines), _BY_STATUS.get(r.status_code, Exit.SERVER))

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items()
                                                 if v is not None})

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None,
             retry_busy: int = 0) -> Any:
        return self.request("POST", path, json=body if body is not None else {},
                            headers=headers, retry_busy=retry_busy)
