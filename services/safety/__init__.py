"""Safety: guardrails-ai checks on the prompt; allow, redact or block by policy."""
