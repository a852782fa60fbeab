"""The API browser at /docs works on a machine with no internet, under Chargeslot's own CSP."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from tests.helpers import screenshot

pytestmark = pytest.mark.browser


async def block_other_hosts(page: Any) -> list[str]:
    """Abort every request that leaves this machine; return the list of what was tried."""
    tried: list[str] = []

    async def guard(route: Any) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            await route.continue_()
        else:
            tried.append(route.request.url)
            await route.abort()

    await page.route("**/*", guard)
    return tried


async def test_docs_lists_the_operations_with_other_hosts_blocked(new_page: Any) -> None:
    page = await new_page(1440, 900)
    tried = await block_other_hosts(page)
    blocked: list[str] = []
    page.on(
        "console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None
    )
    await page.goto("/docs")
    for path in ("/api/stations/{station_id}/status", "/api/bookings", "/healthz", "/readyz"):
        await expect(page.locator(f'.opblock-summary-path[data-path="{path}"]').first).to_be_visible()
    await page.locator('.opblock-summary-path[data-path="/readyz"]').click()
    await expect(page.locator('tr.response[data-code="503"]')).to_be_visible()
    await screenshot(page, "docs", full_page=False)
    assert tried == [], "the API browser must not need another host"
    assert blocked == [], "nothing on /docs may be blocked by its CSP"
