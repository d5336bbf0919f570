"""The dashboard in a real browser (Debian's chromium under Playwright): it renders, data never runs as
script, a registry change shows up on an open board without a reload, the transcript of a running agent
is tailed live, retry and cancel work from the page, signing in works, and a phone's width is usable."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from monitor.agent_run import LOG
from registry.models import RegistryState, Status
from tests.dashboard.conftest import EVIL_TITLE, NOW, PLANTED, SCRIPT, Site, _task, agent_output
from tests.waiting import wait_for

PHONE = {"width": 390, "height": 844}


def _page(browser: Any, site: Site, **kwargs: Any) -> tuple[Any, Any, list[str]]:
    """A fresh browser context and page; the list collects every dialog (alert) and console error (a CSP
    violation among them): data that tried to run as script shows up there."""
    context = browser.new_context(**kwargs)
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: dialogs.append(f"console: {m.text}") if m.type == "error" else None)
    return context, page, dialogs


def _no_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    view = page.evaluate("window.innerWidth")
    assert width <= view, f"the page is {width}px wide in a {view}px viewport"


def test_the_board_renders_escapes_data_and_runs_no_script_from_it(browser: Any, site: Site,
                                                                   tmp_path: Path) -> None:
    context, page, dialogs = _page(browser, site, viewport={"width": 1440, "height": 900})
    page.goto(site.url + "/")
    page.wait_for_selector("#col-running .card")
    assert page.locator(f"[data-task='{site.ids['running']}'] h3").inner_text() == EVIL_TITLE
    assert page.locator("img").count() == 0
    assert page.locator("section.needs li").first.inner_text().startswith("ready")
    wait_for(lambda: page.evaluate("document.body.dataset.live") == "on", "the event stream to open")
    page.screenshot(path=str(tmp_path / "board.png"), full_page=True)
    page.goto(f"{site.url}/tasks/{site.ids['failed']}")
    page.locator("#ev-1 summary").click()
    assert SCRIPT in page.locator("#ev-1 pre").inner_text()
    page.locator("#tr-1 summary").click()
    assert SCRIPT in page.locator("#tr-1 pre").inner_text()
    assert PLANTED["GITHUB_TOKEN"] not in page.content() and "[REDACTED]" in page.content()
    page.screenshot(path=str(tmp_path / "task.png"), full_page=True)
    page.goto(f"{site.url}/tasks/{site.ids['running']}")
    assert page.locator("h1").inner_text() == EVIL_TITLE
    assert page.locator("script").count() == 1  # only the static file
    assert dialogs == []
    context.close()


def test_a_registry_change_shows_on_an_open_board_without_a_reload(browser: Any, site: Site) -> None:
    context, page, dialogs = _page(browser, site)
    page.goto(site.url + "/")
    wait_for(lambda: page.evaluate("document.body.dataset.live") == "on", "the event stream to open")
    page.evaluate("window.__same_page = true")

    def add(state: RegistryState) -> RegistryState:
        new = _task("brand-new-0100", f"Brand new {SCRIPT}", Status.running, site.layout.worktree_root)
        return state.with_task(new)

    site.registry.update(add)
    page.wait_for_selector("#col-running [data-task='brand-new-0100']", timeout=5000)
    assert page.locator("[data-task='brand-new-0100'] h3").inner_text() == f"Brand new {SCRIPT}"

    def finish(state: RegistryState) -> RegistryState:
        task = state.tasks["brand-new-0100"]
        return state.with_task(task.model_copy(update={"status": Status.ready, "updated_at": NOW}))

    site.registry.update(finish)
    page.wait_for_selector("#col-ready [data-task='brand-new-0100']", timeout=5000)
    assert "Brand new" in page.locator("section.needs").inner_text()
    assert page.evaluate("window.__same_page") is True, "the page reloaded"
    assert dialogs == []
    context.close()


def test_a_running_agents_transcript_is_tailed_live(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    context, page, _dialogs = _page(browser, site)
    task_id = site.ids["running"]
    page.goto(f"{site.url}/tasks/{task_id}")
    wait_for(lambda: page.evaluate("document.body.dataset.live") == "on", "the event stream to open")
    assert "I will fix it" in page.locator("#tail pre").inner_text()
    log = site.layout.run_dir(task_id, 1) / LOG
    with log.open("a") as handle:
        handle.write(json.dumps({"type": "assistant", "message": {"content": [
            {"type": "text", "text": "now the tests pass"}]}}) + "\n")
    expect(page.locator("#tail pre")).to_contain_text("now the tests pass", timeout=5000)
    log.write_text(agent_output("plain line from the agent <b>bold?</b>\n"))
    expect(page.locator("#tail pre")).to_contain_text("<b>bold?</b>", timeout=5000)

    def checking(state: RegistryState) -> RegistryState:  # the agent exited: the head follows, no reload
        task = state.tasks[task_id]
        return state.with_task(task.model_copy(update={"status": Status.checking, "reason": "waiting for CI"}))

    page.evaluate("window.__same_page = true")
    site.registry.update(checking)
    expect(page.locator("#head .badge")).to_have_text("checking", timeout=5000)
    expect(page.locator("#head .reason")).to_have_text("waiting for CI")
    assert page.evaluate("window.__same_page") is True
    context.close()


def test_retry_with_a_note_and_cancel_from_the_page(browser: Any, site: Site) -> None:
    context, page, dialogs = _page(browser, site)
    failed = site.ids["failed"]
    page.goto(f"{site.url}/tasks/{failed}")
    page.fill("#note", "retry: commit — and mind the login form")
    page.click("form.retry button")
    page.wait_for_selector("p.said")
    assert "Retry started" in page.locator("p.said").inner_text()
    task = site.registry.read().tasks[failed]
    assert task.notes[-1] == "retry: commit — and mind the login form"
    assert task.status in (Status.running, Status.queued) and task.reason
    running = site.ids["running"]
    page.goto(f"{site.url}/tasks/{running}")
    page.click("form.cancel button")
    page.wait_for_selector("p.said")
    assert site.registry.read().tasks[running].status is Status.cancelled
    assert page.locator("form.cancel").count() == 0
    # a refused action is one line on a page, not a traceback
    page.goto(f"{site.url}/tasks/{site.ids['queued']}")
    assert page.locator("form.retry").count() == 0
    assert dialogs == []
    context.close()


def test_sign_in_with_the_token_in_the_browser(browser: Any, token_site: Site) -> None:
    context, page, _dialogs = _page(browser, token_site)
    page.goto(token_site.url + "/")
    assert page.locator("#board").count() == 0
    page.fill("#token", "wrong")
    page.click("form.login button")
    assert "not the one" in page.content()
    page.fill("#token", token_site.token)
    page.click("form.login button")
    page.wait_for_selector("#board")
    assert token_site.token not in page.url and token_site.token not in page.content()
    wait_for(lambda: page.evaluate("document.body.dataset.live") == "on", "the event stream to open")
    context.close()


def test_a_phone_width_shows_everything_without_sideways_scrolling(browser: Any, site: Site) -> None:
    context, page, _dialogs = _page(browser, site, viewport=PHONE, is_mobile=True, has_touch=True)
    long_title = "A very long title without spaces " + "x" * 150

    def add(state: RegistryState) -> RegistryState:
        task = _task("long-title-0200", long_title, Status.failed, site.layout.worktree_root, reason="y" * 400)
        return state.with_task(task.model_copy(update={"updated_at": NOW + timedelta(minutes=1)}))

    site.registry.update(add)
    page.goto(site.url + "/")
    page.wait_for_selector("#col-failed [data-task='long-title-0200']")
    _no_overflow(page)
    page.screenshot(path=str(Path(site.repo).parent / "phone-board.png"), full_page=True)
    page.goto(f"{site.url}/tasks/{site.ids['failed']}")
    _no_overflow(page)
    button = page.locator("form.retry button")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    page.fill("#note", "from my phone")
    with page.expect_navigation():
        button.tap()
    assert "Retry started" in page.locator("p.said").inner_text()
    assert site.registry.read().tasks[site.ids["failed"]].notes[-1] == "from my phone"
    _no_overflow(page)
    context.close()


def test_the_submit_box_plans_a_request_as_swarm_submit_does(browser: Any, git_repo: Path, tmux_socket: str,
                                                              monkeypatch: Any) -> None:
    from tests.dashboard.conftest import serve_dashboard
    from tests.fakes.messages_api import ScriptedMessagesServer
    from tests.orchestrator.test_submit import NO_LLM_CONFIG, plan_turn, planned
    from tests.worlds import write_config

    write_config(git_repo, tmux_socket, extra=NO_LLM_CONFIG)
    api = ScriptedMessagesServer([plan_turn([planned("csv", "Export invoices as CSV.", scope=["csv.py"])])]).start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
    served = serve_dashboard(git_repo, token=False, monkeypatch=monkeypatch)
    site = next(served)
    try:
        context, page, dialogs = _page(browser, site)
        page.goto(site.url + "/")
        page.fill("#request", f"Add a CSV export of invoices {SCRIPT}")
        with page.expect_navigation(url="**/?said=submitted"):
            page.click("form.submit button")
        page.wait_for_selector("text=Task csv")
        [task] = [t for t in site.registry.read().tasks.values() if t.title == "Task csv"]
        assert task.status in (Status.running, Status.queued) and task.llm_tokens > 0
        assert "Add a CSV export of invoices" in json.dumps(api.agent_requests[0])  # the request reached the model
        assert dialogs == []
        context.close()
        monkeypatch.delenv("ANTHROPIC_API_KEY")  # without a key there is no box
        page2 = browser.new_page()
        page2.goto(site.url + "/")
        assert page2.locator("form.submit").count() == 0
        page2.close()
    finally:
        served.close()
        api.stop()
