"""HTTP API (FastAPI): signed webhook intake, orders, lifts and approvals, devices,
health and metrics. See ``docs/api.md``."""

from enforcer.api.app import create_app
from enforcer.engine.contract import EngineAPI

__all__ = ["EngineAPI", "create_app"]
