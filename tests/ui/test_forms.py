"""The web page's rules, in process: sign-in, CSRF, sessions ended by sign-out, expiry
and disabling, and decisions that go through the lift workflow with the same rules and
audit entries as ``POST /v1/orders/{id}/approvals``."""

from __future__ import annotations

from datetime import timedelta

from enforcer.api.ui.web import CSP
from tests.ui.conftest import Ui, csrf_of


async def test_root_leads_to_sign_in_and_pages_carry_a_strict_policy(ui: Ui) -> None:
    c = ui.browser()
    r = await c.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    r = await c.get("/ui/")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    r = await c.get("/ui/login")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    assert "<script" not in r.text and "http" not in r.text.split("<body>")[1].replace(
        'href="/', "")
    assert '<label for="token">' in r.text
    css = await c.get("/ui/static/ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_sign_in_sets_a_strict_http_only_cookie_and_audits(ui: Ui) -> None:
    c = ui.browser()
    form = await c.get("/ui/login")
    r = await c.post("/ui/login", data={"csrf": csrf_of(form.text), "token": ui.tokens["alice"]})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "enforcer_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/ui" in cookie and "Max-Age=1800" in cookie
    assert "Secure" not in cookie  # plain HTTP here; set over TLS (https scheme)
    assert ui.tokens["alice"] not in cookie
    page = await c.get("/ui/lifts")
    assert page.status_code == 200 and "alice" in page.text
    [entry] = ui.store.audit_entries(action="ui.signed_in")
    assert entry.actor == "alice"


async def test_wrong_token_and_missing_login_csrf_are_refused(ui: Ui) -> None:
    c = ui.browser()
    form = await c.get("/ui/login")
    r = await c.post("/ui/login", data={"csrf": csrf_of(form.text), "token": "enf_nope"})
    assert r.status_code == 401 and "unknown, expired or disabled" in r.text
    r = await c.post("/ui/login", data={"token": ui.tokens["alice"]})
    assert r.status_code == 403 and "enforcer_session" not in r.headers.get("set-cookie", "")
    # Both are counted; refusals without a valid token or signature from one client are
    # audited at most once per interval (the first here; the entry counts the rest).
    codes = [e.payload["code"] for e in ui.store.audit_entries(action="request.refused")]
    assert codes == ["unauthorized"]
    metrics = ui.app.state.ctx.metrics
    counted = {s.labels["code"]: s.value
               for m in metrics.unauthenticated_refused.collect() for s in m.samples
               if s.name.endswith("_total")}
    assert counted.get("unauthorized") == 1 and counted.get("csrf") == 1, counted


async def test_a_form_without_its_csrf_token_is_refused(ui: Ui) -> None:
    order_id = await ui.lift_requested()
    alice = await ui.signed_in("alice")
    lift_id = ui.store.open_lift_request(order_id).id  # type: ignore[union-attr]
    for bad in ({}, {"csrf": "forged"}):
        r = await alice.post(f"/ui/orders/{order_id}/decision",
                             data={"decision": "approve", "lift_request_id": lift_id, **bad})
        assert r.status_code == 403 and "not sent by your page" in r.text
    assert ui.store.get_lift_request(lift_id).approvals == ()
    assert [e.payload["code"] for e in ui.store.audit_entries(
        action="request.refused")] == ["csrf", "csrf"]
    r = await alice.post("/ui/logout", data={})
    assert r.status_code == 403  # signing out needs the token too
    assert (await alice.get("/ui/lifts")).status_code == 200


async def test_board_member_approves_from_the_page_like_the_api(ui: Ui) -> None:
    order_id = await ui.lift_requested()
    alice = await ui.signed_in("alice")
    page = await alice.get("/ui/lifts")
    assert "Waiting for your decision (1)" in page.text and "Approve the lift" in page.text
    assert "board hearing held" in page.text and "bob</strong>:" in page.text
    lift_id = ui.store.open_lift_request(order_id).id  # type: ignore[union-attr]
    r = await alice.post(f"/ui/orders/{order_id}/decision", data={
        "csrf": csrf_of(page.text), "decision": "approve", "lift_request_id": lift_id,
        "note": "agreed at the hearing"})
    assert r.status_code == 303 and r.headers["location"] == f"/ui/orders/{order_id}"
    lift = ui.store.get_lift_request(lift_id)
    assert [(a.approver, a.decision, a.note) for a in lift.approvals] == [
        ("alice", "approve", "agreed at the hearing")]
    [entry] = ui.store.audit_entries(action="lift.approval")
    assert entry.actor == "alice" and entry.payload["decision"] == "approve"
    page = await alice.get(f"/ui/orders/{order_id}")
    assert "You have decided on this request." in page.text
    assert "Approve the lift" not in page.text
    # The API's body limits hold on the page too (a note of at most 4000 characters).
    bob = await ui.signed_in("bob")
    bob_page = await bob.get("/ui/lifts")
    r = await bob.post(f"/ui/orders/{order_id}/decision", data={
        "csrf": csrf_of(bob_page.text), "decision": "approve", "lift_request_id": lift_id,
        "note": "x" * 4001})
    assert r.status_code == 422 and "note" in r.text
    assert len(ui.store.get_lift_request(lift_id).approvals) == 1
    # A second decision is refused by the workflow, as on the API.
    r = await alice.post(f"/ui/orders/{order_id}/decision", data={
        "csrf": csrf_of(page.text), "decision": "refuse", "lift_request_id": lift_id})
    assert r.status_code == 409 and "already decided" in r.text
    assert [e.payload["why"] for e in ui.store.audit_entries(
        action="lift.approval_rejected")] == ["duplicate"]


async def test_approver_outside_the_board_sees_no_button_and_a_forged_post_fails(
        ui: Ui) -> None:
    order_id = await ui.lift_requested()
    dave = await ui.signed_in("dave")
    page = await dave.get("/ui/lifts")
    assert "Approve the lift" not in page.text and "Nothing is waiting for you" in page.text
    assert "You are not one of the approvers" in page.text
    lift_id = ui.store.open_lift_request(order_id).id  # type: ignore[union-attr]
    r = await dave.post(f"/ui/orders/{order_id}/decision", data={
        "csrf": csrf_of(page.text), "decision": "approve", "lift_request_id": lift_id})
    assert r.status_code == 403 and "not one of the approvers" in r.text
    assert ui.store.get_lift_request(lift_id).approvals == ()
    [rejected] = ui.store.audit_entries(action="lift.approval_rejected")
    assert rejected.actor == "dave" and rejected.payload["why"] == "not_eligible"
    # An engineer's session may not decide at all (the API's 403 for the role).
    eng = await ui.signed_in("eng")
    page = await eng.get(f"/ui/orders/{order_id}")
    assert "Approve the lift" not in page.text
    r = await eng.post(f"/ui/orders/{order_id}/decision", data={
        "csrf": csrf_of(page.text), "decision": "approve", "lift_request_id": lift_id})
    assert r.status_code == 403 and "may not decide" in r.text


async def test_a_disabled_users_session_stops_at_once(ui: Ui) -> None:
    order_id = await ui.lift_requested()
    bob = await ui.signed_in("bob")
    page = await bob.get("/ui/lifts")
    assert page.status_code == 200
    ui.store.disable_user("bob", actor="admin")
    r = await bob.get("/ui/lifts")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    lift_id = ui.store.open_lift_request(order_id).id  # type: ignore[union-attr]
    r = await bob.post(f"/ui/orders/{order_id}/decision", data={
        "csrf": csrf_of(page.text), "decision": "approve", "lift_request_id": lift_id})
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert ui.store.get_lift_request(lift_id).approvals == ()


async def test_sessions_end_at_sign_out_and_after_their_lifetime(ui: Ui) -> None:
    carol = await ui.signed_in("carol")
    page = await carol.get("/ui/lifts")
    cookie = carol.cookies["enforcer_session"]
    r = await carol.post("/ui/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert ui.store.ui_session(cookie) is None
    assert [e.actor for e in ui.store.audit_entries(action="ui.signed_out")] == ["carol"]
    carol = await ui.signed_in("carol")
    assert (await carol.get("/ui/lifts")).status_code == 200
    ui.clock.advance(timedelta(minutes=31).total_seconds())
    assert (await carol.get("/ui/lifts")).status_code == 303


async def test_read_only_roles_and_the_evidence_bundle(ui: Ui) -> None:
    order_id = await ui.verified_order()
    aud = await ui.signed_in("aud")
    page = await aud.get(f"/ui/orders/{order_id}")
    assert page.status_code == 200
    assert "Download the evidence bundle" in page.text and "<form" in page.text  # sign out
    assert "decision" not in page.text.split("Lift requests")[1].split("Timeline")[0]
    assert "order.accepted" in page.text or "order.state" in page.text  # the timeline
    r = await aud.get(f"/ui/orders/{order_id}/evidence")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="evidence-{order_id}.json"'
    assert r.json()["bundle"]["order_id"] == order_id
    listing = await aud.get("/ui/orders?state=verified")
    assert order_id in listing.text
    assert order_id not in (await aud.get("/ui/orders?state=lifted")).text
    alice = await ui.signed_in("alice")
    assert (await alice.get(f"/ui/orders/{order_id}/evidence")).status_code == 403
    assert (await alice.get("/ui/devices")).status_code == 403
    assert "Devices" not in (await alice.get("/ui/orders")).text.split("</nav>")[0]
