"""``python -m services.postprocess``."""

import asyncio

from services.postprocess.app import create_service

if __name__ == "__main__":
    asyncio.run(create_service().run())
