"""Fixtures of the browser tests: one gateway stack for the whole run (stack.py), one headless Chromium (Debian's,
driven by Playwright: never a browser Playwright downloaded), and signed-in reviewers, each in a browser context of
their own (their own cookies), whose pages are watched for Content-Security-Policy violations and script errors.

Environment (set by ops/lib/browser-tests.sh): TOLLGATE_BIN (the tollgate binary), TOLLGATE_PY2 (Python with the mcp
SDK), TOLLGATE_PEERS (Tests/Peers), TOLLGATE_CHROMIUM (the browser), TOLLGATE_ARTIFACTS (where screenshots go).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from stack import ROOT, Stack


def _path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else default


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    tollgate = _path("TOLLGATE_BIN", ROOT / ".build" / "debug" / "tollgate")
    python2 = _path("TOLLGATE_PY2", ROOT / "ops" / ".venv" / "mcp2" / "bin" / "python")
    peers = _path("TOLLGATE_PEERS", ROOT / "Tests" / "Peers")
    for needed in (tollgate, python2):
        if not needed.exists():
            raise pytest.UsageError(f"{needed} is missing: run ops/lib/browser-tests.sh, which builds and installs it")
    running = Stack(tollgate, peers, python2)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    chromium = os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        # Playwright passes --no-sandbox itself (chromium_sandbox is off by default), which Chromium needs as root.
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    directory = _path("TOLLGATE_ARTIFACTS", ROOT / ".build" / "test-artifacts" / "browser")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Watched:
    """A browser context and its first page; `problems` collects CSP violations and script errors."""

    def __init__(self, context: BrowserContext, page: Page, reviewer: str | None):
        self.context = context
        self.page = page
        self.reviewer = reviewer
        self.problems: list[str] = []
        self.watch(page)

    def watch(self, page: Page) -> None:
        def on_console(message: Any) -> None:
            text = message.text
            if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
                self.problems.append(f"console: {text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def new_page(self) -> Page:
        page = self.context.new_page()
        self.watch(page)
        return page

    def cookie(self) -> str:
        """The session cookie as a `Cookie:` header value (for raw HTTP with this reviewer's session)."""
        values = [f"{c['name']}={c['value']}" for c in self.context.cookies() if c["name"] == "tollgate_ui"]
        assert values, f"{self.reviewer} has no tollgate_ui cookie: {self.context.cookies()}"
        return values[0]


@pytest.fixture
def people(stack: Stack, browser: Browser) -> Iterator[Any]:
    """`people("alice")`: alice signed in, in a context of her own; `people(None)`: nobody signed in."""
    opened: list[Watched] = []

    def open_as(reviewer: str | None, **options: Any) -> Watched:
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        watched = Watched(context, context.new_page(), reviewer)
        opened.append(watched)
        if reviewer is not None:
            sign_in(stack, watched.page, reviewer)
        return watched

    yield open_as
    problems = [problem for watched in opened for problem in watched.problems]
    for watched in opened:
        watched.context.close()
    assert not problems, "the pages broke their Content-Security-Policy or threw:\n" + "\n".join(problems)


def sign_in(stack: Stack, page: Page, reviewer: str) -> None:
    page.goto(f"{stack.base}/ui/sign-in")
    page.fill("#token", stack.token(reviewer))
    page.click("#sign-in button[type=submit]")
    page.wait_for_url(f"{stack.base}/ui/pending**")


_started = __import__("time").time()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Names the screenshots this run wrote (the test artifacts, kept under .build/test-artifacts/browser/)."""
    directory = _path("TOLLGATE_ARTIFACTS", ROOT / ".build" / "test-artifacts" / "browser")
    written = sorted(p for p in directory.glob("*.png") if p.stat().st_mtime >= _started) if directory.is_dir() else []
    for path in written:
        terminalreporter.write_line(f"browser artifact: {path}")
