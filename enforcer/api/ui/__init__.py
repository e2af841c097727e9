"""The web page served by the daemon under ``/ui/``, for the Health & Safety board and
the NOC: server-rendered HTML (Jinja2), no script, no external assets, a strict Content
Security Policy, every action a plain form with a CSRF token. Sign in once with your own
token; the page holds a short-lived session (``enforcer.store.sessions``)."""

from enforcer.api.ui.pages import router

__all__ = ["router"]
