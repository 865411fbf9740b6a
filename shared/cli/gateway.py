"""``llmops up``'s gateway options: its port, and a per-run dev API key when no keys are configured."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
from pathlib import Path

__all__ = ["add_gateway_arguments", "dev_auth_env", "gateway_banner"]

_AUTH_VARIABLES = ("LLMOPS_GATEWAY_AUTH", "LLMOPS_GATEWAY_AUTH_FILE")


def add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    """``--gateway-port`` (default ``LLMOPS_GATEWAY_PORT`` or 8000) and ``--no-gateway``."""
    default = int(os.environ.get("LLMOPS_GATEWAY_PORT", "8000"))
    parser.add_argument("--gateway-port", type=int, default=default, help="HTTP gateway port (0: a free one)")
    parser.add_argument("--no-gateway", action="store_true", help="do not start the HTTP gateway")


def _configured(env_file: Path) -> bool:
    if any(os.environ.get(name) for name in _AUTH_VARIABLES):
        return True
    try:
        text = env_file.read_text(encoding="utf-8")
    except OSError:
        return False
    return any(line.strip().startswith(_AUTH_VARIABLES) for line in text.splitlines())


def dev_auth_env(env_file: Path = Path(".env")) -> tuple[dict[str, str], str | None]:
    """Environment for the gateway and the key to print: a fresh dev key for tenant ``default``.

    Nothing is generated when keys are configured (``LLMOPS_GATEWAY_AUTH[_FILE]``): then the
    operator's keys are the only ones. The dev key lives only as long as this ``llmops up``.
    """
    if _configured(env_file):
        return {}, None
    key = "sk-llmops-dev-" + secrets.token_urlsafe(18)
    auth = {"keys": [{"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": "default", "name": "dev"}]}
    return {"LLMOPS_GATEWAY_AUTH": json.dumps(auth)}, key


def gateway_banner(url: str, key: str | None) -> str:
    """What ``llmops up`` prints about the gateway."""
    lines = [f"gateway: {url}  (OpenAI base URL {url}/v1)"]
    if key is not None:
        lines.append(f"  dev API key: {key}")
        lines.append(f"  playground: {url}/#key={key}")
    else:
        lines.append(f"  playground: {url}/  (API keys from LLMOPS_GATEWAY_AUTH[_FILE])")
    return "\n".join(lines)
