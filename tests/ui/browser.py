"""A real headless Chromium driven by Selenium (Debian's ``chromium`` and
``chromium-driver``; ``.ci/run`` installs them). Without them the browser tests skip,
except under ``CI=true``, where a missing browser fails the run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = ("chromedriver", "chromium-driver")


def _which(names: tuple[str, ...]) -> str | None:
    for n in names:
        found = shutil.which(n) or (f"/usr/lib/chromium/{n}"
                                    if Path(f"/usr/lib/chromium/{n}").exists() else None)
        if found:
            return found
    return None


def require_browser() -> tuple[str, str]:
    browser, driver = _which(CHROMIUM), _which(DRIVER)
    try:
        import selenium  # noqa: F401
    except ImportError:
        browser = None
    if browser and driver:
        return browser, driver
    why = "chromium, chromium-driver (apt) and selenium (dev extra) are needed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: {why}")
    pytest.skip(why)


@contextmanager
def chrome(profile: Path, *, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A fresh headless Chromium with its own profile directory (nothing shared between
    runs, no network of its own: no sync, updates or background fetches)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = require_browser()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-default-apps", "--disable-extensions",
                f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    d = webdriver.Chrome(options=opts, service=Service(executable_path=driver))
    try:
        yield d
    finally:
        d.quit()


def screenshot_dir(tmp: Path) -> Path:
    """Where the run's screenshots go: ``$ENFORCER_UI_SCREENSHOTS`` or a temp dir."""
    out = Path(os.environ.get("ENFORCER_UI_SCREENSHOTS") or tmp / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out
