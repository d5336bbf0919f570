"""The dashboard's pages over real HTTP (httpx against uvicorn): what the board, the task page and the
fragments show, the headers every page carries, and that nothing secret or executable gets through."""

from __future__ import annotations

import re

import httpx

from tests.dashboard.conftest import EVIL_TITLE, PLANTED, SCRIPT, Site


def _every_page(site: Site) -> dict[str, httpx.Response]:
    pages = {}
    with site.client() as client:
        for path in ("/", "/fragment/board", "/static/dashboard.js", "/static/dashboard.css", "/static/nope.js",
                     "/tasks/no-such-task", "/tasks/..%2f..%2fetc", "/login"):
            pages[path] = client.get(path)
        for task_id in site.ids.values():
            for suffix in ("", "/fragment", "/tail"):
                pages[f"/tasks/{task_id}{suffix}"] = client.get(f"/tasks/{task_id}{suffix}")
        with client.stream("GET", "/events") as stream:  # the first bytes of the event stream
            pages["/events"] = httpx.Response(stream.status_code, headers=stream.headers,
                                              content=next(stream.iter_bytes()))
    return pages


def test_the_board_has_a_column_per_state_and_what_needs_you_first(site: Site) -> None:
    with site.client() as client:
        page = client.get("/")
    assert page.status_code == 200
    html = page.text
    for column in ("col-queued", "col-running", "col-checking", "col-ready", "col-failed", "col-done"):
        assert f'id="{column}"' in html
    needs = html.index('aria-label="needs you"')
    board = html.index('id="board"')
    assert needs < board, "needs you comes before the columns"
    needs_html = html[needs:board]
    assert "Ready work" in needs_html and "Failed work" in needs_html and "Checking work" not in needs_html
    assert "PR #43" in needs_html
    # the card: title, id, agent, attempt n/N, time in state, reason, PR with CI and reviews, tokens, cost
    card = re.search(r'<article class="card s-checking".*?</article>', html, re.S)
    assert card is not None
    text = card.group(0)
    for part in ("Checking work", "checking-task-0003", "scripted", "attempt 1/3", "in checking",
                 "waiting for CI", "PR #42", "CI pending", "reviews 0/1", "1,200 tokens", "$0.05"):
        assert part in text, part
    assert re.search(r"\d+m\d*s? in checking|\d+m in checking", text)
    # the fleet header
    for part in ("service", "last tick", "next tick", "last webhook", "1 running of 4", "today", "this week",
                 "GitHub"):
        assert part in html, part


def test_the_task_page_shows_the_timeline_evidence_prompts_transcript_checks_and_costs(site: Site) -> None:
    with site.client() as client:
        html = client.get(f"/tasks/{site.ids['failed']}").text
        ready = client.get(f"/tasks/{site.ids['ready']}").text
    assert html.index("Attempt 2") < html.index("Attempt 1")  # newest first
    assert html.count("ci_failed") >= 2 and "CI failed: &lt;script&gt;" in html
    assert "Evidence given to the next attempt" in html and "FAILED test_login" in html
    assert "Prompt of attempt 1" in html and "# Prompt of attempt 2" in html
    assert "Transcript" in html and "I will fix it" in html  # readable, not raw JSON
    assert '"type": "assistant"' not in html
    assert "tool Bash" in html
    assert "Retry" in html and "Cancel task" not in html  # a failed task: retry, nothing to cancel
    for part in ("Definition of done", "ci", "success", "reviews", "1/1", "Open PR #43",
                 "https://github.com/acme/shop/pull/43"):
        assert part in ready, part
    costs = re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td><td>([^<]*)</td></tr>", ready)
    assert costs == [("agent (attempt 1)", "1,200 tokens", "$0.05"), ("retries (agent)", "0 tokens", "$0.00"),
                     ("planning (its share)", "400 tokens", "$0.0060"), ("retry prompts (model)", "200 tokens",
                                                                          "$0.0040"),
                     ("reviews (model)", "300 tokens", "$0.01"), ("total", "2,100 tokens", "$0.07")]


def test_every_page_is_escaped_has_a_strict_csp_and_no_secret(site: Site) -> None:
    pages = _every_page(site)
    assert pages["/static/nope.js"].status_code == 404
    assert pages["/tasks/no-such-task"].status_code == 404
    assert pages["/events"].headers["content-type"].startswith("text/event-stream")
    for path, response in pages.items():
        body = response.text
        for name, value in PLANTED.items():
            assert value not in body, f"{name} leaked in {path}"
        if response.headers.get("content-type", "").startswith("text/html"):
            assert "<script>" not in body.replace('<script src="/static/dashboard.js" defer></script>', ""), path
            assert "<img src=x" not in body, path
            csp = response.headers["content-security-policy"]
            script_src = re.search(r"script-src ([^;]*)", csp)
            assert script_src is not None and "'unsafe-inline'" not in script_src.group(1), path
            assert "frame-ancestors 'none'" in csp and response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
    board = pages["/"].text
    assert "&lt;img src=x onerror=alert(1)&gt;" in board and EVIL_TITLE not in board
    assert "[REDACTED]" in pages[f"/tasks/{site.ids['running']}"].text
    assert "&lt;script&gt;" in pages[f"/tasks/{site.ids['failed']}"].text and SCRIPT not in board


def test_a_link_from_the_registry_is_only_ever_http(site: Site) -> None:
    from registry.models import PullRequest

    def evil(state):
        task = state.tasks[site.ids["checking"]]
        return state.with_task(task.model_copy(update={"pr": PullRequest(number=9, url="javascript:alert(1)")}))

    site.registry.update(evil)
    with site.client() as client:
        html = client.get("/").text + client.get(f"/tasks/{site.ids['checking']}").text
    assert "javascript:" not in html


def test_a_page_that_fails_says_so_without_details(site: Site) -> None:
    (site.layout.state_dir / "registry.json").write_text("{not json " + PLANTED["GITHUB_TOKEN"])
    (site.layout.state_dir / "registry.json.bak").write_text("{also not json")
    with site.client() as client:
        page = client.get("/")
    assert page.status_code in (500, 503)
    assert PLANTED["GITHUB_TOKEN"] not in page.text and "Traceback" not in page.text
    assert 'class="error"' in page.text


def test_the_header_counts_spend_as_the_budget_does_and_says_when_new_work_is_held(
        git_repo, tmux_socket, monkeypatch) -> None:
    from datetime import UTC, datetime

    from monitor.budget import period_starts, spent_since
    from orchestrator.status import money
    from tests.dashboard.conftest import serve_dashboard
    from tests.worlds import write_config

    write_config(git_repo, tmux_socket, extra="[budget]\nper_day_usd = 0.005\n")
    served = serve_dashboard(git_repo, token=False, monkeypatch=monkeypatch)
    site = next(served)
    try:
        with site.client() as client:
            html = client.get("/").text
    finally:
        served.close()
    day, week = period_starts(datetime.now(UTC), None)
    state = site.registry.read()
    spent_today, spent_week = spent_since(state, day), spent_since(state, week)
    assert spent_today.usd >= 0.01  # the review and the retry prompt were recorded now
    today = re.search(r"<dt>today</dt><dd id=\"today\">([^<]*)</dd>", html)
    assert today is not None
    assert today.group(1) == f"{spent_today.tokens:,} tokens, {money(spent_today.usd)} of $0.0050"
    assert f"<dt>this week</dt><dd>{spent_week.tokens:,} tokens, {money(spent_week.usd)}</dd>" in html
    assert "held:" in html


def test_event_streams_are_bounded_and_closed_ones_are_let_go(site: Site) -> None:
    from contextlib import ExitStack

    from tests.waiting import wait_for

    site.dashboard.streams.limit = 2
    with ExitStack() as held, site.client() as three:
        readers = []  # kept: a dropped iterator closes its response
        for _ in range(2):
            client = held.enter_context(site.client())
            stream = held.enter_context(client.stream("GET", "/events"))
            readers.append(stream.iter_bytes())
            assert next(readers[-1]).startswith(b"retry:")
        assert site.dashboard.streams.open == 2, site.dashboard.streams.open
        assert three.get("/events").status_code == 503
    wait_for(lambda: site.dashboard.streams.open == 0, "the closed streams to end")
    with site.client() as again, again.stream("GET", "/events") as stream:
        assert stream.status_code == 200
