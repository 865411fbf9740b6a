"""``python -m services.grounding``."""

from services.grounding.app import create_service
from shared.messaging.runtime import run

if __name__ == "__main__":
    run(create_service().run())
