"""``python -m services.safety``."""

import asyncio

from services.safety.app import create_service

if __name__ == "__main__":
    asyncio.run(create_service().run())
