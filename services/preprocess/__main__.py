"""``python -m services.preprocess``."""

from services.preprocess.app import create_service
from shared.runtime.serve import serve

if __name__ == "__main__":
    serve(create_service().run())
