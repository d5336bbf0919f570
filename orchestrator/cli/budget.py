"""`swarm budget`: spend today and this week against the limits, and the human's way to change them
(written to .swarm/budget.json, never to swarm.toml). What only this command needs is imported inside it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console
from orchestrator.errors import UsageError

budget_app = typer.Typer(help="Spend against [budget]; raise or set a limit.", invoke_without_command=True)
app.add_typer(budget_app, name="budget")
KEYS = ("per_task_usd", "per_day_usd", "per_week_usd", "per_task_tokens", "per_day_tokens", "per_week_tokens")


@budget_app.callback()
def budget(
    ctx: typer.Context,
    raise_day: Annotated[float, typer.Option("--raise-day", help="Add this many dollars to today's limit")] = 0.0,
    raise_week: Annotated[float, typer.Option("--raise-week", help="Add dollars to this week's limit")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """Spend today and this week, and the limits (with `--raise-day N`: today's limit raised by $N)."""
    if ctx.invoked_subcommand is not None:
        return
    from monitor.budget import period_starts
    from monitor.budget_override import add_raise, zone_of
    from orchestrator.budget import today
    from orchestrator.view import load_view, utc_now

    if raise_day < 0 or raise_week < 0:
        raise UsageError("a raise is a positive number of dollars (e.g. --raise-day 20)")
    settings, view = load_view()
    now = utc_now()
    day, week = period_starts(now, zone_of(settings.budget.timezone))
    current = today(settings, view.layout.state_dir, view.registry, now)
    for amount, period, start in ((raise_day, "day", day), (raise_week, "week", week)):
        if not amount:
            continue
        if current is None or not getattr(current.limits, f"per_{period}_usd"):
            raise UsageError(f"there is no per_{period}_usd limit to raise; set one: "
                             f"swarm budget set per_{period}_usd 40")
        add_raise(view.layout.state_dir, period, start.date(), amount, 0)
    if raise_day or raise_week:
        from monitor.wake import wake

        wake(view.layout.state_dir, [])  # a running `swarm serve` ticks now and starts what waited
        current = today(settings, view.layout.state_dir, view.registry, now)
    if as_json:
        print(json.dumps(_as_dict(current)))
        return
    if current is None:
        console().print("no day or week budget is set ([budget] per_day_usd, per_week_usd in swarm.toml, or "
                        "swarm budget set per_day_usd 40)", markup=False, highlight=False)
        return
    console().print(current.line(), markup=False, highlight=False)
    if current.over:
        console().print(f"held: {current.reason}; nothing new starts or respawns (running agents finish)",
                        markup=False, highlight=False, style="yellow")


def _as_dict(current: object) -> dict[str, object]:
    from monitor.budget import Verdict

    if not isinstance(current, Verdict):
        return {"limits": None}
    return {
        "day": {"start": current.day_start.isoformat(), "usd": current.day.usd, "tokens": current.day.tokens},
        "week": {"start": current.week_start.isoformat(), "usd": current.week.usd, "tokens": current.week.tokens},
        "limits": {key: getattr(current.limits, key) for key in KEYS},
        "over": current.over or None,
        "reason": current.reason,
    }


@budget_app.command("set")
def set_limit(
    key: Annotated[str, typer.Argument(help=f"One of {', '.join(KEYS)}")],
    value: Annotated[float, typer.Argument(help="The new limit (0 = none)")],
) -> None:
    """Set a limit until set again (kept in .swarm/budget.json; swarm.toml is left as you wrote it)."""
    from monitor.budget_override import set_limit as write
    from orchestrator.view import load_view

    if key not in KEYS:
        raise UsageError(f"{key!r} is not a budget limit (one of {', '.join(KEYS)})")
    if value < 0:
        raise UsageError("a limit is 0 (none) or more")
    _, view = load_view()
    write(view.layout.state_dir, key, value)
    from monitor.wake import wake

    wake(view.layout.state_dir, [])
    console().print(f"{key} = {value:g} (in .swarm/budget.json)", markup=False, highlight=False)
