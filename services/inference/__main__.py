"""``python -m services.inference``."""

import asyncio

from services.inference.app import create_service

if __name__ == "__main__":
    asyncio.run(create_service().run())
