"""A driver who uses only a keyboard (and a screen reader) on a phone-sized screen.

No mouse clicks: focus moves with Tab and arrow keys, forms are sent with Enter or Space, and the
page must put focus somewhere sensible after each step.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import DRIVER
from tests.helpers import screenshot

pytestmark = pytest.mark.browser

PUNE = 4  # the demo's 24/7 station


async def tab_to(page: Any, target: Any, limit: int = 40) -> None:
    """Press Tab until ``target`` has focus; fails if it is not reachable from the keyboard."""
    for _ in range(limit):
        if await target.evaluate("el => el === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{target} never received focus after {limit} presses of Tab")


async def test_driver_signs_in_books_and_pays_with_the_keyboard_alone(new_page: Any) -> None:
    page = await new_page(width=375, height=800)
    await page.goto(f"/login?next=/stations/{PUNE}")
    await tab_to(page, page.get_by_role("textbox", name="Email"))
    await page.keyboard.type(DRIVER["email"])
    await page.keyboard.press("Tab")
    await page.keyboard.type("not-the-password")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    await expect(page.get_by_role("alert")).to_be_focused()

    await page.keyboard.press("Shift+Tab")
    await expect(page.get_by_role("textbox", name="Password")).to_be_focused()
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.type(DRIVER["password"])
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/stations/{PUNE}")

    form = page.locator("#booking-form")
    await expect(form).to_be_visible()
    for role, name in [
        ("textbox", "Date"),
        ("combobox", "Start time"),
        ("combobox", "Duration"),
        ("combobox", "Connector"),
        ("textbox", "Vehicle number (optional)"),
        ("button", "Book this slot"),
    ]:
        await expect(form.get_by_role(role, name=name, exact=True)).to_be_visible()
    await expect(page.locator("#slot-check")).to_contain_text("free for this slot")

    await tab_to(page, form.get_by_role("button", name="Book this slot"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Pay to confirm it")).to_be_focused()
    await expect(page.locator("#announcer")).to_contain_text("held for you")

    upi = page.get_by_role("radio", name="UPI")
    await tab_to(page, upi)
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("radio", name="Card")).to_be_checked()
    await tab_to(page, page.get_by_role("button", name="Complete payment"))
    await page.keyboard.press("Space")

    confirmation = page.get_by_role("region", name="Payment complete")
    await expect(confirmation).to_be_focused()
    await expect(confirmation).to_contain_text(re.compile(r"TXN_\w+"))
    await expect(confirmation).to_contain_text("Card")
    await expect(page.locator("#announcer")).to_contain_text(re.compile(r"Payment complete\. Transaction TXN_\w+"))
    await screenshot(page, "keyboard-confirmation-375")
