"""The reviewer page in a real headless Chromium, against a real gateway whose held calls come from the official
`mcp` client and whose upstream's ledger says what really ran (conftest.py, stack.py)."""

from __future__ import annotations

import http.server
import re
import threading
import time
from typing import Any, Iterator

import pytest

from checks import assert_accessible, assert_security_headers
from stack import EXPIRY_SECONDS, Stack, hidden_csrf, wait_until
from steps import (
    LIVE,
    PHONE,
    assert_not_reloaded,
    decide_in_page,
    mark,
    release,
    row,
    status_of,
    submit,
    transfer,
)

# ---- signing in ---------------------------------------------------------------------------------------------------


def test_sign_in_with_a_reviewer_token(stack: Stack, people: Any) -> None:
    nobody = people(None)
    page = nobody.page
    answer = page.goto(f"{stack.base}/ui")
    assert page.url.startswith(f"{stack.base}/ui/sign-in"), page.url
    assert_security_headers(answer.all_headers(), "GET /ui/sign-in")
    assert_accessible(page)
    assert page.get_attribute("#token", "type") == "password"

    # A wrong token: refused, in words, and no session.
    page.fill("#token", "tg_" + "x" * 43)
    assert submit(page, "#sign-in button[type=submit]").status == 401
    assert page.locator("#error").inner_text().strip(), "a wrong token is refused in words"
    assert not [c for c in nobody.context.cookies() if c["name"] == "tollgate_ui"]

    # The right one: a session cookie as the contract says, the pending page, who is signed in.
    page.fill("#token", stack.token("alice"))
    page.click("#sign-in button[type=submit]")
    page.wait_for_url(f"{stack.base}/ui/pending**")
    cookie = next(c for c in nobody.context.cookies() if c["name"] == "tollgate_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui", cookie
    assert not cookie["secure"], "plain http: no Secure (it would never be sent back)"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie["value"]), "32 random bytes, base64url"
    assert "alice" in page.locator("#reviewer").inner_text()
    assert page.locator('nav[aria-label="Main"] a', has_text="Pending").count() == 1
    assert_accessible(page)
    # The same path asked before signing in is where sign-in leads back to.
    assert page.goto(f"{stack.base}/ui").url.startswith(f"{stack.base}/ui/pending")


def test_sign_in_leads_back_to_the_page_asked_for_and_never_off_site(stack: Stack, people: Any) -> None:
    arguments = transfer(1012)
    call = stack.hold("transfer", arguments)
    id = stack.request_for(call)
    nobody = people(None)
    page = nobody.page
    page.goto(f"{stack.base}/ui/approvals/{id}")
    assert page.url.startswith(f"{stack.base}/ui/sign-in"), page.url
    page.fill("#token", stack.token("alice"))
    page.click("#sign-in button[type=submit]")
    page.wait_for_url(f"{stack.base}/ui/approvals/{id}")
    assert status_of(page) == "pending"

    other = people(None)
    for next in ("//example.com/ui/x", "https://example.com/", "/ui/../v1/approvals", "/ui/%2F%2Fexample.com"):
        other.page.goto(f"{stack.base}/ui/sign-in?next={next}")
        other.page.fill("#token", stack.token("bob"))
        other.page.click("#sign-in button[type=submit]")
        other.page.wait_for_url(f"{stack.base}/ui/**")
        assert other.page.url.startswith(f"{stack.base}/ui/pending"), f"next={next} led to {other.page.url}"
        submit(other.page, "#sign-out button")
    release(stack, id)


# ---- pending, approve, deny ------------------------------------------------------------------------------------


def test_a_held_call_appears_without_a_reload_and_approving_it_runs_it_once(stack: Stack, people: Any) -> None:
    alice = people("alice")
    pending = alice.page
    mark(pending)
    arguments = transfer(1001)
    call = stack.hold("transfer", arguments)
    id = stack.request_for(call)
    pending.wait_for_selector(row(id), timeout=LIVE)
    assert_not_reloaded(pending)
    cells = pending.locator(row(id)).inner_text()
    for shown in ("agent-a", "pay", "transfer", "money moves", "0 of 1"):
        assert shown in cells, f"{shown!r} is not in the row: {cells!r}"
    assert_accessible(pending)

    # The request's own page, in a second tab; the first stays on the pending list.
    page = alice.new_page()
    answer = page.goto(f"{stack.base}/ui/approvals/{id}")
    assert_security_headers(answer.all_headers(), "GET /ui/approvals/ID")
    assert status_of(page) == "pending"
    assert "1001" in page.locator("#arguments").inner_text()
    assert page.locator("#history li").count() >= 1
    assert_accessible(page)
    assert stack.runs("transfer", arguments) == 0, "nothing runs before the decision"

    posted = decide_in_page(page, "approve", "matches invoice 1182")
    assert posted.status == 303, posted.status
    assert "done=approved" in page.url, page.url
    assert page.locator("#notice").inner_text().strip()
    result = call.result()
    assert result["ok"] and not result["result"]["isError"], result
    assert result["result"]["structuredContent"]["status"] == "transferred", result
    assert stack.runs("transfer", arguments) == 1
    shown = stack.approval(id)
    assert shown["status"] == "approved" and shown["approvals"][0]["reviewer"] == "alice", shown
    assert shown["approvals"][0]["comment"] == "matches invoice 1182"

    # Decided elsewhere (in the other tab): gone from the pending list at its next poll, still without a reload.
    pending.wait_for_selector(row(id), state="detached", timeout=LIVE)
    assert_not_reloaded(pending)
    page.reload()
    assert status_of(page) in ("approved", "consumed"), status_of(page)
    assert page.locator("#approve").count() == 0, "a decided request offers no Approve"
    time.sleep(0.5)
    assert stack.runs("transfer", arguments) == 1, "it ran once"


def test_a_denial_with_a_reason_reaches_the_agent(stack: Stack, people: Any) -> None:
    bob = people("bob")
    page = bob.page
    arguments = transfer(1002)
    call = stack.hold("transfer", arguments)
    id = stack.request_for(call)
    page.goto(f"{stack.base}/ui/approvals/{id}")
    assert page.get_attribute("#deny textarea[name=reason]", "required") is not None, "the reason is required"
    posted = decide_in_page(page, "deny", "not during the freeze")
    assert posted.status == 303, posted.status
    assert "done=denied" in page.url
    result = call.result()["result"]
    assert result["isError"], result
    text = " ".join(result["content"])
    assert "not during the freeze" in text and "bob" in text, text
    assert result["structuredContent"]["status"] == "denied", result
    assert stack.runs("transfer", arguments) == 0
    assert status_of(page) == "denied"


def test_a_quorum_of_two_needs_two_reviewers_in_two_browsers(stack: Stack, people: Any) -> None:
    arguments = {"path": "/srv/old-reports"}
    call = stack.hold("delete_file", arguments)
    id = stack.request_for(call)
    alice, bob, erin = people("alice"), people("bob"), people("erin")

    # Only the listed reviewers may decide: erin is told so, in words.
    erin.page.goto(f"{stack.base}/ui/approvals/{id}")
    refused = decide_in_page(erin.page, "approve")
    assert refused.status == 403, refused.status
    assert "not a reviewer of this request" in erin.page.locator("#error").inner_text()

    alice.page.goto(f"{stack.base}/ui/pending?tool=delete_file")
    assert alice.page.locator("#pending tr[data-approval-id]").count() == 1, "the filter keeps only delete_file"
    alice.page.click(f'{row(id)} a[href="/ui/approvals/{id}"]')
    alice.page.wait_for_url(f"**/ui/approvals/{id}")
    assert decide_in_page(alice.page, "approve").status == 303
    assert status_of(alice.page) == "pending", "one of two approvals: still pending"
    assert "1 of 2" in alice.page.locator("#approval").inner_text()
    time.sleep(0.5)
    assert not call.done() and stack.runs("delete_file", arguments) == 0, "one approval of two releases nothing"
    assert alice.page.locator("#approve").count() == 0, "no second Approve for alice"
    csrf = hidden_csrf(alice.page.content())
    again = stack.form_post(f"/ui/approvals/{id}/approve", {"csrf": csrf or "", "comment": ""}, alice.cookie())
    assert again.status == 409 and 'id="error"' in again.body, (again.status, again.body[:500])

    bob.page.goto(f"{stack.base}/ui/approvals/{id}")
    assert decide_in_page(bob.page, "approve").status == 303
    result = call.result()
    assert result["ok"] and not result["result"]["isError"], result
    assert stack.runs("delete_file", arguments) == 1
    assert [a["reviewer"] for a in stack.approval(id)["approvals"]] == ["alice", "bob"]


# ---- who may not ---------------------------------------------------------------------------------------------------


def test_an_auditor_sees_no_buttons_and_a_forged_post_is_refused(stack: Stack, people: Any) -> None:
    arguments = transfer(1004)
    call = stack.hold("transfer", arguments)
    id = stack.request_for(call)
    carol = people("carol")
    page = carol.page
    page.goto(f"{stack.base}/ui/pending")
    page.wait_for_selector(row(id))
    page.goto(f"{stack.base}/ui/approvals/{id}")
    assert status_of(page) == "pending"
    assert page.locator("#approve, #deny").count() == 0, "an auditor gets no forms"
    assert page.locator("#approval button").count() == 0, "an auditor gets no buttons"
    assert_accessible(page)

    # Raw HTTP with carol's own session and a valid CSRF token (from her page's sign-out form): still refused.
    csrf = hidden_csrf(page.content())
    assert csrf, "the page has the sign-out form's csrf field"
    forged = stack.form_post(f"/ui/approvals/{id}/approve", {"csrf": csrf, "comment": "me too"}, carol.cookie())
    assert forged.status == 403, (forged.status, forged.body[:500])
    assert 'id="error"' in forged.body
    denied = stack.form_post(f"/ui/approvals/{id}/deny", {"csrf": csrf, "reason": "nope"}, carol.cookie())
    assert denied.status == 403, (denied.status, denied.body[:500])
    assert stack.approval(id)["status"] == "pending"
    assert not call.done() and stack.runs("transfer", arguments) == 0

    # The same raw POST from an admin's session works: the refusal above was carol's role, not the request's shape.
    dave = people("dave")
    dave.page.goto(f"{stack.base}/ui/approvals/{id}")
    admin_csrf = hidden_csrf(dave.page.content())
    assert admin_csrf
    made = stack.form_post(f"/ui/approvals/{id}/approve", {"csrf": admin_csrf, "comment": ""}, dave.cookie())
    assert made.status == 303, (made.status, made.body[:500])
    assert not call.result()["result"]["isError"]
    assert stack.runs("transfer", arguments) == 1


def test_a_self_approval_is_refused_with_words(stack: Stack, people: Any) -> None:
    arguments = transfer(1005)
    call = stack.hold("transfer", arguments, agent="agent-a")
    id = stack.request_for(call)
    own = people("agent-a")  # the agent's id is also a reviewer's
    page = own.page
    page.goto(f"{stack.base}/ui/approvals/{id}")
    refused = decide_in_page(page, "approve", "mine, surely")
    assert refused.status == 403, refused.status
    words = page.locator("#error").inner_text()
    assert "agent-a made this call and cannot approve or deny it" in words, words
    assert page.get_attribute("#error", "role") == "alert"
    assert stack.approval(id)["status"] == "pending"
    time.sleep(0.3)
    assert stack.runs("transfer", arguments) == 0
    release(stack, id)


# ---- time and sessions ---------------------------------------------------------------------------------------------


def test_a_request_that_expires_while_the_page_is_open_disappears(stack: Stack, people: Any) -> None:
    alice = people("alice")
    page = alice.page
    mark(page)
    arguments = {"text": "expires soon"}
    call = stack.hold("echo", arguments)
    id = stack.request_for(call)
    page.wait_for_selector(row(id), timeout=LIVE)
    page.wait_for_selector(row(id), state="detached", timeout=EXPIRY_SECONDS * 1000 + LIVE)
    assert_not_reloaded(page)
    result = call.result()["result"]
    assert result["isError"] and result["structuredContent"]["status"] == "expired", result
    page.goto(f"{stack.base}/ui/approvals/{id}")
    assert status_of(page) == "expired"
    assert page.locator("#approve, #deny").count() == 0
    assert stack.runs("echo", arguments) == 0


def test_sign_out_ends_the_session(stack: Stack, people: Any) -> None:
    alice = people("alice")
    page = alice.page
    cookie = alice.cookie()
    csrf = hidden_csrf(page.content())
    assert stack.request("GET", "/ui/pending", headers={"Cookie": cookie}).status == 200, "the cookie works"
    assert submit(page, "#sign-out button").status == 303
    assert page.url.startswith(f"{stack.base}/ui/sign-in"), page.url
    assert not [c for c in alice.context.cookies() if c["name"] == "tollgate_ui"], "the cookie is cleared"

    # The old cookie, replayed by hand, no longer works: the session is gone on the server, not only in the browser.
    old = stack.request("GET", "/ui/pending", headers={"Cookie": cookie})
    assert old.status == 303 and old.headers.get("location", "").startswith("/ui/sign-in"), (old.status, old.headers)
    arguments = transfer(1007)
    call = stack.hold("transfer", arguments)
    id = stack.request_for(call)
    replayed = stack.form_post(f"/ui/approvals/{id}/approve", {"csrf": csrf or ""}, cookie)
    assert replayed.status in (303, 401, 403), replayed.status
    assert "/ui/approvals/" not in replayed.headers.get("location", ""), "not accepted as a decision"
    assert stack.approval(id)["status"] == "pending"
    page.goto(f"{stack.base}/ui/pending")
    assert page.url.startswith(f"{stack.base}/ui/sign-in"), page.url
    release(stack, id)


# ---- forgery from another site -------------------------------------------------------------------------------------


class _OtherSite(http.server.BaseHTTPRequestHandler):
    """Serves one page of another site: `html`, whatever the path."""

    html = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def other_site() -> Iterator[Any]:
    """`other_site(html)`: serves `html` on another port of 127.0.0.1 (and so of localhost); returns the port."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(html: str) -> int:
        handler = type("OtherSite", (_OtherSite,), {"html": html})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def auto_submit(target: str) -> str:
    """A page that submits a form to `target` as soon as it loads (no CSRF token: it cannot know one)."""
    return (
        "<!doctype html><html><body>"
        f'<form id="f" method="post" action="{target}">'
        '<input type="hidden" name="comment" value="approved by a stranger"></form>'
        "<script>document.getElementById('f').submit()</script></body></html>"
    )


def test_a_cross_site_form_post_without_the_csrf_token_is_refused(stack: Stack, people: Any, other_site: Any) -> None:
    arguments = transfer(1008)
    call = stack.hold("transfer", arguments)
    id = stack.request_for(call)
    alice = people("alice")
    page = alice.page
    port = other_site(auto_submit(f"{stack.base}/ui/approvals/{id}/approve"))

    # Another origin on the same host (same site for cookies: alice's SameSite=Strict cookie goes along).
    with page.expect_response(lambda r: r.request.method == "POST" and "/ui/approvals/" in r.url) as posted:
        page.goto(f"http://127.0.0.1:{port}/")
    assert posted.value.status == 403, posted.value.status
    page.wait_for_url(f"{stack.base}/ui/**")
    assert page.locator("#error").inner_text().strip(), "the refusal is in words"

    # Another site altogether (localhost is not 127.0.0.1): refused too.
    with page.expect_response(lambda r: r.request.method == "POST" and "/ui/approvals/" in r.url) as posted:
        page.goto(f"http://localhost:{port}/")
    assert posted.value.status in (303, 403), posted.value.status
    if posted.value.status == 303:
        assert "/ui/sign-in" in posted.value.headers.get("location", ""), posted.value.headers

    # Each layer holds alone: with alice's cookie and this gateway's own Origin (what a same-origin page would send),
    # a POST without the token, or with a made-up one, is still refused.
    for fields in ({"comment": "x"}, {"csrf": "A" * 43, "comment": "x"}):
        forged = stack.form_post(f"/ui/approvals/{id}/approve", fields, alice.cookie())
        assert forged.status == 403 and 'id="error"' in forged.body, (fields, forged.status, forged.body[:300])

    assert stack.approval(id)["status"] == "pending", "no forged approval was recorded"
    time.sleep(0.3)
    assert not call.done() and stack.runs("transfer", arguments) == 0
    # alice's own session still works (the forgery did not break it).
    page.goto(f"{stack.base}/ui/pending")
    page.wait_for_selector(row(id))
    release(stack, id)


def test_a_link_from_another_site_opens_the_request_signed_in(stack: Stack, people: Any, other_site: Any) -> None:
    """A webhook's link clicked in Slack: the SameSite=Strict cookie stays home on that navigation, and the page
    reloads itself from the gateway's own origin (no script) so the reviewer lands signed in, with nothing decided."""
    arguments = transfer(1013)
    call = stack.hold("transfer", arguments)
    id = stack.request_for(call)
    alice = people("alice")
    page = alice.page
    link = f'<a id="link" href="{stack.base}/ui/approvals/{id}">Review</a>'
    port = other_site(f"<!doctype html><html><body>{link}</body></html>")
    page.goto(f"http://localhost:{port}/")
    page.click("#link")
    page.wait_for_selector("#approval", timeout=LIVE)
    assert page.url.startswith(f"{stack.base}/ui/approvals/{id}"), page.url
    assert status_of(page) == "pending" and page.locator("#approve").count() == 1
    assert "alice" in page.locator("#reviewer").inner_text()
    time.sleep(0.3)
    assert stack.approval(id)["status"] == "pending" and stack.runs("transfer", arguments) == 0
    release(stack, id)


# ---- on a phone -----------------------------------------------------------------------------------------------------


def test_phone_sized_screenshots_of_the_pending_page_and_one_request(stack: Stack, people: Any, artifacts: Any) -> None:
    call = stack.hold("transfer", {"amount": 1009.5, "to": "acct_1\u202e9999"})
    id = stack.request_for(call)
    phone = people("bob", **PHONE)
    page = phone.page
    page.goto(f"{stack.base}/ui/pending")
    page.wait_for_selector(row(id))
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the pending page is {width} px wide on a 390 px screen"
    pending_png = artifacts / "pending-390x844.png"
    page.screenshot(path=str(pending_png), full_page=True)

    page.goto(f"{stack.base}/ui/approvals/{id}")
    shown = page.locator("#arguments").inner_text()
    assert "\u202e" not in shown and "202E" in shown.upper(), f"the bidi control is made visible: {shown!r}"
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the request page is {width} px wide on a 390 px screen"
    assert page.locator("#approve button").is_visible() and page.locator("#deny button").is_visible()
    request_png = artifacts / "approval-390x844.png"
    page.screenshot(path=str(request_png), full_page=True)
    print(f"\nscreenshots: {pending_png} {request_png}")
    release(stack, id)


# ---- the watch itself ---------------------------------------------------------------------------------------------


def test_the_pages_policy_blocks_inline_script_and_the_watch_sees_it(stack: Stack, people: Any) -> None:
    """Every test fails on a CSP violation (conftest.py); this shows the policy is enforced and the watch works."""
    alice = people("alice")
    page = alice.page
    try:
        page.add_script_tag(content="window.tollgateInjected = true;")
    except Exception:
        pass  # Playwright may report the blocked script itself
    wait_until(lambda: alice.problems, 5, "the console to report the refused inline script")
    assert page.evaluate("() => window.tollgateInjected") is None, "the inline script did not run"
    assert any("Content Security Policy" in problem for problem in alice.problems), alice.problems
    alice.problems.clear()
