"""Creating the pipeline's topics with partitions (idempotent)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.runtime.security import client_security_kwargs
from shared.runtime.settings import KafkaSettings

__all__ = ["ensure_topics"]


async def ensure_topics(
    settings: KafkaSettings, names: list[str], configs: Mapping[str, Mapping[str, str]] | None = None
) -> list[str]:
    """Create the topics that do not exist yet (with ``configs[name]``, if any); returns the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap.split(","),
        client_id=f"{settings.client_id}-admin",
        **client_security_kwargs(settings),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            new = [
                NewTopic(
                    name=n,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs=dict((configs or {}).get(n, {})),
                )
                for n in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        return missing
    finally:
        await admin.close()
