"""Checks every page of the reviewer UI must pass: security headers, no inline script or style (the CSP forbids them,
so they would not run anyway), every form field labelled, every button named, a language and a title."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

CSP_PARTS = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
)

# Runs in the page through the DevTools protocol, which the page's CSP does not govern.
_AUDIT = """() => {
  const problems = [];
  const named = (el) => (el.getAttribute('aria-label') || '').trim() ||
      (el.getAttribute('aria-labelledby') || '').trim();
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
    const byFor = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
    const label = byFor || el.closest('label');
    if (!(label && label.textContent.trim()) && !named(el)) {
      problems.push('a form field without a label: ' + el.outerHTML.slice(0, 160));
    }
  }
  for (const el of document.querySelectorAll('button, input[type=submit]')) {
    const text = el.tagName === 'BUTTON' ? el.textContent.trim() : (el.value || '').trim();
    if (!text && !named(el)) problems.push('a button without a name: ' + el.outerHTML.slice(0, 160));
  }
  for (const el of document.querySelectorAll('a[href]')) {
    if (!el.textContent.trim() && !named(el)) problems.push('a link without text: ' + el.outerHTML.slice(0, 160));
  }
  for (const el of document.querySelectorAll('script')) {
    if (!el.src) problems.push('an inline script: ' + el.outerHTML.slice(0, 160));
  }
  for (const el of document.querySelectorAll('style')) problems.push('an inline <style>');
  for (const el of document.querySelectorAll('[style]')) {
    problems.push('an inline style attribute: ' + el.outerHTML.slice(0, 160));
  }
  for (const el of document.querySelectorAll('*')) {
    for (const attribute of el.attributes) {
      if (attribute.name.startsWith('on')) problems.push('an inline event handler: ' + el.outerHTML.slice(0, 160));
    }
  }
  for (const el of document.querySelectorAll('a[href^="javascript:" i]')) problems.push('a javascript: link');
  for (const el of document.querySelectorAll('svg')) {
    if (el.getAttribute('role') === 'img' && !named(el)) problems.push('an svg image without a name');
  }
  if (!document.documentElement.lang) problems.push('<html> has no lang');
  if (!document.title.trim()) problems.push('the page has no <title>');
  return problems;
}"""


def assert_accessible(page: Page) -> None:
    """The page now shown passes the checks above."""
    problems: list[Any] = page.evaluate(_AUDIT)
    assert not problems, f"{page.url}:\n" + "\n".join(problems)


def assert_security_headers(headers: dict[str, str], what: str) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    policy = lowered.get("content-security-policy", "")
    missing = [part for part in CSP_PARTS if part not in policy]
    assert not missing, f"{what}: Content-Security-Policy {policy!r} lacks {missing}"
    frame = lowered.get("x-frame-options", "")
    assert frame.upper() == "DENY", f"{what}: X-Frame-Options {frame!r}"
    assert lowered.get("x-content-type-options", "").lower() == "nosniff", f"{what}: no X-Content-Type-Options: nosniff"
    assert "no-store" in lowered.get("cache-control", ""), f"{what}: Cache-Control {lowered.get('cache-control')}"
