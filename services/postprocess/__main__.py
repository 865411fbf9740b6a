"""``python -m services.postprocess``."""

from services.postprocess.app import create_service
from shared.messaging.runtime import run

if __name__ == "__main__":
    run(create_service().run())
