"""The orchestrator's LLM brain: the model client and its budget (llm), planning a request into tasks
(planner, plan, plan_repair, plan_shape), the prompts and the context they carry (prompts, context), the
retry prompter, AI review and learning from outcomes. Only the commands that think load it."""
