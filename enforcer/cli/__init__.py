"""The ``enforcer`` command line (typer + rich)."""
