"""The applicants' status page in a real browser: Debian's Chromium (``/usr/bin/chromium``), driven by Playwright,
scanned by axe-core (WCAG 2.0/2.1 A and AA rules) in every page state, used with the keyboard alone, in the
large-type mode, on a phone-sized screen and with JavaScript off; screenshots at phone and desktop sizes
(``SIGW_SCREENSHOT_DIR`` keeps them: ``make screenshots`` writes the README's)."""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright

from adapters.portal.web import ClientFailures
from tests.conftest import Demo, FakeClock, start_demo, start_portal
from tests.helpers import eventually, person_id
from tests.portal_cases import STATES, kept, transfer_in

CHROMIUM = Path("/usr/bin/chromium")
# As root on a closed network: no sandbox, and none of Chromium's own calls home (they would be refused).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert os.access(CHROMIUM, os.X_OK), (
        "Debian's chromium is needed: `make test` installs it (apt-get install chromium)"
    )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def site(redis_url: str, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Demo]:
    portal = await start_portal(tmp_path / "portal", ClientFailures(limit=3))
    demo = await start_demo(redis_url, clock, act=False, portal=portal)
    yield demo
    await demo.channel.close()
    await demo.gateway.stop(grace_s=0.2)
    await demo.sims.stop()
    await portal.stop()


def _url(demo: Demo, path: str = "/") -> str:
    assert demo.portal is not None
    return f"http://127.0.0.1:{demo.portal.http_port}{path}"


async def _serious(page: Page) -> list[str]:
    """axe-core's serious and critical violations of the page as it stands, one line each."""
    results = await Axe().run(page, options=WCAG_AA)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def _query(page: Page, demo: Demo, transfer_id: str, id_number: str) -> None:
    await page.goto(_url(demo))
    await page.fill("#transfer_id", transfer_id)
    await page.fill("#id_number", id_number)
    async with page.expect_navigation():
        await page.click("button[type=submit]")


async def test_every_page_state_passes_axe_at_both_sizes(site: Demo, browser: Browser) -> None:
    cases = {state: await transfer_in(site, state, i) for i, state in enumerate(STATES, start=1)}
    portal = site.portal
    assert portal is not None
    ended = ("completed", "rejected", "cancelled", "temporary_account")
    await eventually(lambda: kept(portal) == 2 * len(ended))  # the person and the employer, each: on the pages
    found: dict[str, list[str]] = {}
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page = await browser.new_page(viewport=size)  # type: ignore[arg-type]
        await page.goto(_url(site))
        found[f"{size_name} empty form"] = await _serious(page)
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        assert await page.locator(".error-summary a").count() == 2
        found[f"{size_name} form with errors"] = await _serious(page)
        await _query(page, site, "T01-20260302-0000ABCD", person_id(900))
        assert "没有找到" in await page.inner_text("main")
        found[f"{size_name} unknown transfer"] = await _serious(page)
        for state, case in cases.items():
            await _query(page, site, case.transfer_id, case.id_number)
            assert await page.inner_text("h1") == "转移进度", state
            found[f"{size_name} {state}"] = await _serious(page)
        await page.goto(_url(site, "/?text=large"))
        await _query(page, site, cases["contact_sent"].transfer_id, cases["contact_sent"].id_number)
        found[f"{size_name} large type"] = await _serious(page)
        await page.close()
    site.clock.advance(days=40)  # every open step overdue
    sweeper = site.gateway.sweeper
    assert sweeper is not None and await sweeper.sweep()
    page = await browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
    await _query(page, site, cases["funds_sent"].transfer_id, cases["funds_sent"].id_number)
    assert "已超期" in await page.inner_text("main")
    found["overdue"] = await _serious(page)
    for _ in range(3):  # the portal's own guard (limit 3 here)
        await _query(page, site, "T01-20260302-0000ABCD", person_id(901))
    await _query(page, site, cases["submitted"].transfer_id, cases["submitted"].id_number)
    assert "分钟后再试" in await page.inner_text("main")
    found["too many failures"] = await _serious(page)
    await page.close()
    assert {state: problems for state, problems in found.items() if problems} == {}
    assert len(found) == 2 * (3 + len(STATES) + 1) + 2


async def _focused(page: Page) -> dict[str, Any]:
    focused: dict[str, Any] = await page.evaluate(
        """() => {
            const e = document.activeElement;
            const s = getComputedStyle(e);
            return {id: e.id, tag: e.tagName, text: e.innerText || '', outline: s.outlineStyle,
                    width: parseFloat(s.outlineWidth), shadow: s.boxShadow};
        }"""
    )
    return focused


async def test_the_keyboard_alone_reaches_every_control_with_visible_focus(site: Demo, browser: Browser) -> None:
    case = await transfer_in(site, "contact_sent", 31)
    page = await browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
    await page.goto(_url(site))
    await page.keyboard.press("Tab")
    skip = await _focused(page)
    assert skip["text"] == "跳到主要内容" and skip["outline"] != "none" and skip["width"] >= 2
    await page.keyboard.press("Enter")
    assert (await _focused(page))["id"] == "main"
    await page.keyboard.press("Tab")
    field = await _focused(page)
    assert field["id"] == "transfer_id" and field["outline"] != "none" and field["width"] >= 2
    # an empty submission: the error summary names both fields, each a link to its field
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert await page.locator(".error-summary a").count() == 2
    assert await page.evaluate("() => document.activeElement.className") == "error-summary"  # focus goes there
    await page.keyboard.press("Tab")  # its first link
    assert (await _focused(page))["text"] == "请输入转移编号。"
    await page.keyboard.press("Enter")
    assert (await _focused(page))["id"] == "transfer_id"  # the link brings the person to the field
    described = await page.get_attribute("#transfer_id", "aria-describedby")
    assert described == "transfer_id-hint transfer_id-error" and await page.is_visible("#transfer_id-error")
    await page.keyboard.type(case.transfer_id)
    await page.keyboard.press("Tab")
    assert (await _focused(page))["id"] == "id_number"
    await page.keyboard.type(case.id_number)
    await page.keyboard.press("Tab")
    button = await _focused(page)
    assert button["tag"] == "BUTTON" and button["outline"] != "none"
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert await page.inner_text("h1") == "转移进度"
    assert "北京市社会保险经办机构" in await page.inner_text("main")
    assert case.id_number not in page.url and case.id_number not in await page.content()
    await page.close()


async def test_the_large_type_mode_enlarges_the_text_and_stays_on(site: Demo, browser: Browser) -> None:
    case = await transfer_in(site, "submitted", 32)
    page = await browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
    await page.goto(_url(site))
    size = "() => parseFloat(getComputedStyle(document.querySelector('label')).fontSize)"
    normal = await page.evaluate(size)
    await page.click("text=大字版")
    large = await page.evaluate(size)
    assert large >= normal * 1.3
    await _query(page, site, case.transfer_id, case.id_number)
    assert await page.evaluate("() => document.documentElement.classList.contains('large')")
    await page.click("text=标准字号")
    assert await page.evaluate(size) == normal
    await page.close()


async def test_the_page_fits_a_phone_and_works_without_javascript(site: Demo, browser: Browser) -> None:
    case = await transfer_in(site, "funds_sent", 33)
    context = await browser.new_context(viewport=PHONE, java_script_enabled=False)  # type: ignore[arg-type]
    page = await context.new_page()
    await _query(page, site, case.transfer_id, case.id_number)
    assert await page.inner_text("h1") == "转移进度"
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert await page.evaluate(overflow) <= 0  # nothing wider than the screen (evaluate still runs: devtools)
    assert await page.get_attribute("html", "lang") == "zh-CN"
    await context.close()


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


async def test_screenshots_at_phone_and_desktop_sizes(site: Demo, browser: Browser, tmp_path: Path) -> None:
    folder = Path(os.environ.get("SIGW_SCREENSHOT_DIR") or tmp_path)
    os.makedirs(folder, exist_ok=True)
    case = await transfer_in(site, "completed", 34)
    portal = site.portal
    assert portal is not None
    await eventually(lambda: kept(portal) == 2)
    waiting = await transfer_in(site, "contact_sent", 35)
    shots = []
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page = await browser.new_page(viewport=size)  # type: ignore[arg-type]
        await page.goto(_url(site))
        shots.append((folder / f"portal-form-{size_name}.png", size))
        await page.screenshot(path=str(shots[-1][0]), full_page=True)
        for name, shown in (("completed", case), ("waiting", waiting)):
            await _query(page, site, shown.transfer_id, shown.id_number)
            shots.append((folder / f"portal-{name}-{size_name}.png", size))
            await page.screenshot(path=str(shots[-1][0]), full_page=True)
        await page.close()
    for path, size in shots:
        width, height = _png_size(path)
        assert width == size["width"] and height >= size["height"]
