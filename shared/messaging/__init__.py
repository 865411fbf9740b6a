"""The messaging core: envelope, topics, settings, broker, logging, the stage runner."""
