"""``python -m services.preprocess``."""

import asyncio

from services.preprocess.app import create_service

if __name__ == "__main__":
    asyncio.run(create_service().run())
