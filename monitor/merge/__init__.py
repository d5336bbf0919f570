"""Landing branches: restacks of dependent branches, the merge train, and the fixer with its verified guardrails."""
