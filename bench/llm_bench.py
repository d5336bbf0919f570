"""What the orchestrator spends: tokens per planned task, tokens per rewritten retry prompt, and the tokens
of a monitor tick that needs no retry (which must be 0).

Measured with the real anthropic client against the scripted Messages API of the tests
(``tests/fakes/messages_api.py``), which bills 1 token per 4 characters of the request and of the
answer: the figures are the sizes of what swarm sends and asks for, not a real model's tokenizer.

Run: ``.venv/bin/python bench/llm_bench.py`` (part of ``make bench``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.brain.context import select_context
from orchestrator.brain.llm import Llm
from orchestrator.brain.planner import PLAN_TOOL, make_plan
from orchestrator.brain.retry_llm import LlmRetryPrompter
from orchestrator.config import CONFIG_NAME, load
from registry.models import Attempt, Failure, FailureKind, Status, Task

KEY = "sk-ant-api03-bench000000000000000000"
REQUEST = ("Customers on the Pro plan want CSV export of invoices; Acme asked for it twice. Finance needs the "
           "totals to match the PDF invoices to the cent, and exports must respect the customer's locale.")
CONTEXT = {
    "customers.md": "# Customers\n\n" + "Acme (Pro plan) exports invoices monthly for their accountant. " * 40,
    "roadmap.md": "# Roadmap\n\n## Q4\n\nInvoice exports (CSV, then XLSX). Locale-aware formatting. " * 30,
    "decisions.md": "# Decisions\n\nMoney is stored as integer cents; never floats. Exports stream rows. " * 30,
    "domain.md": "# Invoices\n\nAn invoice has lines, taxes per line, a currency and a locale. " * 40,
}


def _plan(tasks: int) -> dict[str, Any]:
    return {
        "summary": "CSV export of invoices for Pro customers, exact to the cent.",
        "contracts": [
            {"name": "export_invoices_csv", "kind": "function",
             "spec": "def export_invoices_csv(customer_id: int, month: str) -> Iterator[str]  # CSV lines",
             "owner": "t1"},
            {"name": "InvoiceRow", "kind": "data", "spec": "{number: str, date: ISO date, total_cents: int, "
             "currency: str}", "owner": ""},
        ],
        "tasks": [
            {"id": f"t{i}", "title": f"Part {i} of the CSV export", "kind": "default",
             "description": ("Implement this part of the invoice CSV export against the shared contracts; "
                             "money stays in integer cents and rows are streamed. ") * 6,
             "scope": [f"src/export/part{i}.py", f"tests/test_part{i}.py"],
             "acceptance": [f"part {i} has tests", "totals match the PDF invoice to the cent"],
             "depends_on": [f"t{i - 1}"] if i > 1 else []}
            for i in range(1, tasks + 1)
        ],
    }


def _repo(root: Path) -> Path:
    from tests.worlds import write_config

    repo = root / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("# shop\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "init"],
                   check=True)
    docs = repo / "docs" / "context"
    docs.mkdir(parents=True)
    for name, body in CONTEXT.items():
        (docs / name).write_text(body)
    write_config(repo, f"swarm-bench-{os.getpid()}")
    return repo


def llm_figures(plan_sizes: tuple[int, ...] = (2, 4, 8)) -> dict[str, Any]:
    from tests.fakes.messages_api import ScriptedMessagesServer, tool_use

    figures: dict[str, Any] = {"plans": []}
    with tempfile.TemporaryDirectory(prefix="swarm-llmbench-") as tmp:
        repo = _repo(Path(tmp))
        settings = load(repo / CONFIG_NAME)
        for size in plan_sizes:
            server = ScriptedMessagesServer([[tool_use(PLAN_TOOL, _plan(size))]]).start()
            try:
                llm = Llm(KEY, settings.llm.model, base_url=server.url, max_retries=0)
                context = select_context(repo, settings.context, REQUEST)
                start = time.perf_counter()
                plan, usage = make_plan(llm, REQUEST, context.text, settings, ["claude"],
                                        dead_letter_dir=Path(tmp) / "dead")
                seconds = time.perf_counter() - start
            finally:
                server.stop()
            figures["plans"].append({"tasks": len(plan.tasks), "input_tokens": usage.input_tokens,
                                     "output_tokens": usage.output_tokens, "per_task": usage.tokens / len(plan.tasks),
                                     "context_files": len(context.files_used), "seconds": seconds})
        server = ScriptedMessagesServer([], side_text="Fix the rounding in totals(): sum cents, then format.").start()
        try:
            spent: list[int] = []
            prompter = LlmRetryPrompter(Llm(KEY, settings.llm.model, base_url=server.url, max_retries=0),
                                        record_usage=lambda _task, usage: spent.append(usage.tokens))
            now = datetime.now(UTC)
            failure = Failure(kind=FailureKind.ci_failed, summary="CI failed", at=now,
                              evidence="FAILED tests/test_totals.py::test_sum - assert 1999 == 2000\n" * 40)
            task = Task(id="t1", title="Totals", prompt=REQUEST, agent="claude", status=Status.running,
                        base_branch="main", branch="swarm/t1", worktree=str(repo), created_at=now, updated_at=now,
                        attempts=(Attempt(number=1, session="swarm-t1", prompt_path="p", started_at=now,
                                          failure=failure),))
            prompt = prompter.retry_prompt(task, failure, 2, 3)
        finally:
            server.stop()
        figures["retry"] = {"tokens": sum(spent), "prompt_chars": len(prompt)}
        # A tick with nothing to retry, with a key configured: no request, and the SDK is never imported.
        probe = ("import os, sys; from orchestrator.wiring import load_world; from monitor.tick import run_tick; "
                 "_, w = load_world(); run_tick(w); print(json.dumps('anthropic' in sys.modules))")
        out = subprocess.run([sys.executable, "-c", "import json; " + probe], cwd=repo, capture_output=True,
                             text=True, env={**os.environ, "ANTHROPIC_API_KEY": KEY,
                                             "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}, timeout=60)
        figures["quiet_tick"] = {"anthropic_imported": json.loads(out.stdout.strip().splitlines()[-1]),
                                 "tokens": 0}
    return figures


def report(figures: dict[str, Any]) -> str:
    lines = ["swarm LLM spend (scripted Messages API: 1 token per 4 characters)"]
    for row in figures["plans"]:
        lines.append(f"  plan of {row['tasks']} task(s): {row['input_tokens']:,} in + {row['output_tokens']:,} out "
                     f"= {row['per_task']:,.0f} tokens per planned task ({row['context_files']} context files)")
    retry = figures["retry"]
    lines.append(f"  one rewritten retry prompt: {retry['tokens']:,} tokens ({retry['prompt_chars']:,} characters)")
    quiet = figures["quiet_tick"]
    lines.append(f"  a tick with nothing to retry: {quiet['tokens']} tokens, anthropic imported: "
                 f"{quiet['anthropic_imported']}")
    return "\n".join(lines)


if __name__ == "__main__":
    # Run as a script, the repository root is not on sys.path: `tests` is importable once it is.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(report(llm_figures()))
