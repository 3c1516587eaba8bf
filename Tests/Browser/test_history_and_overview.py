"""History and Overview (helper D's pages) in a real headless Chromium, on a phone-sized screen."""

from __future__ import annotations

import re
from typing import Any

from checks import assert_accessible
from stack import Stack
from steps import PHONE, status_of, transfer


def test_history_lists_decided_requests_newest_first_and_the_overview_draws_its_chart(
    stack: Stack, people: Any, artifacts: Any
) -> None:
    ids = []
    for amount, action, body in ((1010, "approve", {}), (1011, "deny", {"reason": "too much"})):
        call = stack.hold("transfer", transfer(amount))
        id = stack.request_for(call)
        assert stack.api("POST", f"/v1/approvals/{id}/{action}", reviewer="dave", body=body).status == 200
        call.result()
        ids.append(id)
    phone = people("alice", **PHONE)
    page = phone.page
    page.click('nav[aria-label="Main"] a:has-text("History")')
    page.wait_for_url(f"{stack.base}/ui/history**")
    rows = page.eval_on_selector_all("#history tr[data-approval-id]", "rows => rows.map(r => r.dataset.approvalId)")
    assert ids[0] in rows and ids[1] in rows, rows
    assert rows.index(ids[1]) < rows.index(ids[0]), "newest first"
    assert "too much" in page.locator(f'#history tr[data-approval-id="{ids[1]}"]').inner_text()
    assert_accessible(page)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the history page is {width} px wide on a 390 px screen"
    page.screenshot(path=str(artifacts / "history-390x844.png"), full_page=True)
    page.click(f'#history tr[data-approval-id="{ids[1]}"] a')
    page.wait_for_url(f"**/ui/approvals/{ids[1]}")
    assert status_of(page) == "denied"

    page.click('nav[aria-label="Main"] a:has-text("Overview")')
    page.wait_for_url(f"{stack.base}/ui/overview**")
    chart = page.locator("svg#decisions-chart")
    assert chart.get_attribute("role") == "img" and chart.get_attribute("aria-label"), "a named chart"
    assert "transfer" in page.locator("#busiest-tools").inner_text()
    assert re.search(r"\d", page.locator("#open-sessions").inner_text()), "open sessions are counted"
    assert page.locator("#projector-lag").inner_text().strip()
    assert_accessible(page)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the overview is {width} px wide on a 390 px screen"
    page.screenshot(path=str(artifacts / "overview-390x844.png"), full_page=True)
