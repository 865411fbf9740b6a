"""``python -m services.safety``."""

from services.safety.app import create_service
from shared.runtime.serve import serve

if __name__ == "__main__":
    serve(create_service().run())
