"""The LLM tier and the user's CLI: settings, planning, prompts, and the wiring of the monitor."""
