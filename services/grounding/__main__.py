"""``python -m services.grounding``."""

import asyncio

from services.grounding.app import create_service

if __name__ == "__main__":
    asyncio.run(create_service().run())
