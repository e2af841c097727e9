"""The web page in a real headless Chromium against a real daemon and the lab: a board of
three lifts a safety ban from the page, the lab's ground truth confirms it; an approver
outside the board sees no button and a forged POST is refused; a form without its CSRF
token is refused; a disabled user's session stops at once. The run writes screenshots of
the main pages (``$ENFORCER_UI_SCREENSHOTS`` or a temp dir) for review."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.testing import LabHandle
from tests.conftest import Daemon, start_daemon, stop_daemon
from tests.lifts.test_lift_e2e import _population
from tests.ui.browser import chrome, require_browser, screenshot_dir

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture
def board_daemon(lab: LabHandle, tmp_path: Path) -> Iterator[Daemon]:
    require_browser()
    policy = tmp_path / "policy.yaml"
    safety = {"default_scope": "footprint", "lift": {
        "group": "hs-board", "rule": "unanimous", "time_limit_hours": 72,
        "requester_may_approve": False}}
    other = {"default_scope": "node", "lift": {"rule": "n_of_m", "n": 2}}
    policy.write_text(json.dumps({"reasons": {
        "threat_of_violence": safety, "harassment": safety, "fraud": other,
        "theft_of_service": other, "non_payment": other, "other": other}}))
    d = start_daemon(lab, tmp_path / "daemon", ENFORCER_POLICY=str(policy))
    try:
        yield d
    finally:
        stop_daemon(d)


class Page:
    """One person's browser session on the daemon's page."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.d, self.base, self.shots = driver, base, shots

    def at(self, suffix: str) -> None:
        """Wait for the browser to arrive at a URL ending in ``suffix`` (after a form)."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.d, 20).until(lambda _: self.d.current_url.endswith(suffix))

    def open(self, path: str) -> None:
        self.d.get(self.base + path)

    def sign_in(self, token: str) -> None:
        from selenium.webdriver.common.by import By

        self.open("/ui/login")
        self.d.find_element(By.ID, "token").send_keys(token)
        self.d.find_element(By.CSS_SELECTOR, "form[action='/ui/login'] button").click()
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.d, 20).until(lambda _: "/ui/login" not in self.d.current_url)

    def sign_out(self) -> None:
        from selenium.webdriver.common.by import By

        self.d.find_element(By.CSS_SELECTOR, "form.signout button").click()
        self.at("/ui/login")

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        return str(self.d.find_element(By.TAG_NAME, "body").text)

    def buttons(self, label: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return [b for b in self.d.find_elements(By.TAG_NAME, "button") if b.text == label]

    def shot(self, name: str) -> None:
        self.d.save_screenshot(str(self.shots / f"{name}.png"))

    def session(self) -> tuple[dict[str, str], str]:
        """This browser's session cookie and the page's CSRF token (to forge with)."""
        cookie = self.d.get_cookie("enforcer_session")
        m = re.search(r'name="csrf" value="([^"]+)"', self.d.page_source)
        assert cookie and m
        return {"enforcer_session": cookie["value"]}, m[1]

    def state(self) -> str:
        from selenium.webdriver.common.by import By

        return str(self.d.find_element(By.ID, "order-state").text)

    def assert_labelled(self) -> None:
        """Every visible form control has a label (or is a button with text), and the
        page has one h1."""
        from selenium.webdriver.common.by import By

        assert len(self.d.find_elements(By.TAG_NAME, "h1")) == 1
        for el in self.d.find_elements(By.CSS_SELECTOR, "input, select, textarea"):
            if el.get_attribute("type") == "hidden":
                continue
            el_id = el.get_attribute("id")
            assert el_id and self.d.find_elements(By.CSS_SELECTOR, f"label[for='{el_id}']"), \
                f"unlabelled control {el.get_attribute('name')} on {self.d.current_url}"

    def fits(self) -> None:
        width = self.d.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{self.d.current_url} scrolls sideways: {width}"


def test_board_lifts_a_ban_from_the_page(lab: LabHandle, board_daemon: Daemon,
                                         tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    d = board_daemon
    ready = httpx.get(f"{d.base}/readyz", timeout=10).json()["checks"]["engine"]
    owned = re.search(r"(\d+) of (\d+) devices owned", ready)
    assert owned and int(owned[1]) <= int(owned[2]) == len(lab.devices()), ready
    ports = {x["profile"]: (x["snmp_port"], x["ssh_port"])
             for x in d.get("/v1/devices")["devices"]}
    assert ports["dncs-headend"][0] is None and ports["dncs-headend"][1]  # SSH only
    assert ports["docsis3-generic"][1] is None and ports["docsis3-generic"][0]  # SNMP only
    board = {}
    for name in ("alice", "bob", "carol"):
        out = d.cli("users", "add", name, "--role", "approver", "--group", "hs-board",
                    "--json").stdout
        board[name] = json.loads(out)["token"]
    nina = json.loads(d.cli("users", "add", "nina", "--role", "auditor", "--json").stdout)
    modem, stb, _ecm = _population(lab, "node-a1", 9)
    banned = d.cli("ban", "--account", "ACC-UI-1", "--ticket", "ESC-UI-1", "--reason",
                   "threat_of_violence", "--mac", modem, "--mac", f"{stb}:set_top", "--node",
                   "node-a1", "--json", token=d.tokens["engineer"])
    order_id = json.loads(banned.stdout)["order_id"]
    d.wait_state(order_id, "verified", timeout=60)
    d.cli("lift", order_id, "--reason", "board hearing held; risk resolved",
          token=d.tokens["engineer"])
    shots = screenshot_dir(tmp_path)

    with chrome(tmp_path / "profile") as driver:
        p = Page(driver, d.base, shots)
        p.open("/")
        p.at("/ui/login")
        p.assert_labelled()
        p.shot("01-sign-in")

        for i, name in enumerate(("alice", "bob"), start=1):
            p.sign_in(board[name])
            p.at("/ui/lifts")
            body = p.text()
            assert "Waiting for your decision (1)" in body
            assert "board hearing held; risk resolved" in body and "test-engineer" in body
            p.assert_labelled()
            if i == 1:
                p.shot("02-lift-requests-board-member")
            [approve] = p.buttons("Approve the lift")
            approve.click()
            p.at(f"/ui/orders/{order_id}")
            assert p.state() == "lift_pending"  # two of three: the ban stays in force
            assert f"{name}: approved" in p.text()
            p.sign_out()
        p.shot("03-signed-out")
        assert lab.truth(modem)["forwarding"] is False
        assert lab.truth(stb)["headend"]["decoding"] is False

        # An approver outside the board: no button; a forged POST from their session.
        p.sign_in(d.tokens["approver"])
        p.at("/ui/lifts")
        assert not p.buttons("Approve the lift") and "Nothing is waiting for you" in p.text()
        cookies, csrf = p.session()
        lift_id = d.get(f"/v1/orders/{order_id}")["lift_requests"][-1]["id"]
        forged = httpx.post(f"{d.base}/ui/orders/{order_id}/decision", cookies=cookies,
                            data={"csrf": csrf, "decision": "approve",
                                  "lift_request_id": lift_id}, timeout=10)
        assert forged.status_code == 403 and "not one of the approvers" in forged.text
        no_token = httpx.post(f"{d.base}/ui/orders/{order_id}/decision", cookies=cookies,
                              data={"decision": "approve", "lift_request_id": lift_id},
                              timeout=10)
        assert no_token.status_code == 403 and "not sent by your page" in no_token.text
        p.sign_out()
        lift = d.get(f"/v1/lifts/{lift_id}")
        assert [a["approver"] for a in lift["approvals"]] == ["alice", "bob"]

        # The third member: the order lifts, and the page follows it to lifted.
        p.sign_in(board["carol"])
        driver.find_element("css selector", "textarea").send_keys("unanimous")
        p.shot("04-lift-request-last-member")
        [approve] = p.buttons("Approve the lift")
        approve.click()
        p.at(f"/ui/orders/{order_id}")
        assert p.state() in ("lifting", "lifted")
        first = p.state()
        p.shot("05-order-lifting")
        WebDriverWait(driver, 120, poll_frequency=1).until(
            lambda _: p.state() == "lifted")  # the page reloads itself while moving
        assert first == "lifting", "the page never showed the order lifting"
        p.assert_labelled()
        p.shot("06-order-lifted")
        lab.wait_truth(modem, lambda t: t["forwarding"] is True, timeout=30)
        lab.wait_truth(stb, lambda t: t["headend"]["decoding"] is True, timeout=30)
        assert "lift.approved" in p.text() and "carol: approved" in p.text()
        p.sign_out()

        # The NOC and auditors: orders, one order, devices; a disabled user stops at once.
        p.sign_in(nina["token"])
        p.open("/ui/orders")
        assert order_id in p.text()
        p.assert_labelled()
        p.shot("07-orders")
        p.open("/ui/devices")
        assert "cbr8-1" in p.text() and ("reachable" in p.text() or "not checked yet" in p.text())
        p.shot("08-devices")
        p.open(f"/ui/orders/{order_id}")
        assert "Download the evidence bundle" in p.text()
        d.cli("users", "disable", "nina")
        p.open(f"/ui/orders/{order_id}")
        p.at("/ui/login")

    with chrome(tmp_path / "phone", width=390, height=844) as phone:
        p = Page(phone, d.base, shots)
        p.sign_in(board["alice"])
        p.fits()
        p.open(f"/ui/orders/{order_id}")
        p.fits()
        p.shot("09-order-phone")
    assert len(list(shots.glob("*.png"))) >= 9
    print(f"screenshots: {shots}")
