"""The embedded stack: a Tansu broker, the topics and the five services as supervised processes."""
