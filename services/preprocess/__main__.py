"""``python -m services.preprocess``."""

from services.preprocess.app import create_service
from shared.messaging.runtime import run

if __name__ == "__main__":
    run(create_service().run())
