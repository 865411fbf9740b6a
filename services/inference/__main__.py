"""``python -m services.inference [--workers N]``."""

import argparse

from services.inference.app import create_service
from services.inference.settings import InferenceSettings
from services.inference.workers import WorkerPool
from shared.runtime.serve import serve

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m services.inference")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (LLMOPS_INFERENCE_WORKERS)")
    args = parser.parse_args()
    settings = InferenceSettings()
    if args.workers is not None:
        settings = settings.model_copy(update={"workers": max(1, args.workers)})
    if settings.workers > 1:
        serve(WorkerPool(settings).run())
    serve(create_service(settings).run())
