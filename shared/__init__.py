"""llmops shared code: messaging core, components used by several stages, and the user-facing side."""
