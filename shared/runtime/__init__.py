"""Running a stage on Kafka: settings, broker, the runner's delivery rules, the service, logging, health, metrics.

``service.StageService`` serves a ``shared.contracts.stage.Stage``; ``runner.StageRunner`` parses each
record, calls the stage and publishes its outputs with retries, in order, before the offset commits.
"""
