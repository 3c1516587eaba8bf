"""Steps the browser tests take on the reviewer page: find a row, submit a form and get the POST's answer, read a
request's status, tell a live update from a reload."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from stack import Stack

# The page polls every 2 s: a change must show within this.
LIVE = 8_000

# A phone-sized screen (an iPhone 12-15's CSS pixels).
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def transfer(amount: float) -> dict[str, Any]:
    return {"amount": amount, "to": "bob"}


def row(id: str) -> str:
    return f'#pending tr[data-approval-id="{id}"]'


def mark(page: Page) -> None:
    """Leaves a mark in the page's JavaScript state: a reload or a navigation would wipe it."""
    page.evaluate("() => { window.tollgateTestMark = 'still here'; }")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("() => window.tollgateTestMark") == "still here", "the page was reloaded or navigated"


def status_of(page: Page) -> str | None:
    return page.get_attribute("#approval", "data-status")


def submit(page: Page, button: str) -> Any:
    """Clicks a form's button; returns the POST's response once the page it leads to (after any redirect) loaded."""
    with page.expect_navigation():
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click(button)
    return posted.value


def decide_in_page(page: Page, action: str, text: str = "") -> Any:
    """Fills the approve or deny form of the request page shown and submits it; returns the POST's response."""
    field = "comment" if action == "approve" else "reason"
    if text:
        page.fill(f"#{action} textarea[name={field}]", text)
    return submit(page, f"#{action} button")


def release(stack: Stack, id: str) -> None:
    """Denies a request left pending through the API, so its agent stops waiting."""
    stack.api("POST", f"/v1/approvals/{id}/deny", reviewer="dave", body={"reason": "end of test"})
