"""Known default secrets: a process refuses to start with one unless ``LLMOPS_DEV_MODE`` is on (DESIGN.md §5).

"Known" means a value that ships in docs, examples or other products' defaults (``admin``, ``changeme``,
the ``sk-mykey`` of the example auth file, ...), or an empty one where a secret is required. Each check names
the setting, never the value.

Example:
    >>> refuse_default_secrets({"LLMOPS_KAFKA_SASL_PASSWORD": SecretStr("admin")}, dev_mode=False)
    Traceback (most recent call last):
    shared.runtime.secrets.DefaultSecretError: LLMOPS_KAFKA_SASL_PASSWORD: a known default secret (or empty); ...

"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from pydantic import SecretStr

__all__ = [
    "DEFAULT_API_KEYS",
    "KNOWN_DEFAULT_SECRETS",
    "DefaultSecretError",
    "default_api_key_hashes",
    "is_known_default",
    "refuse_default_secrets",
]

#: Passwords every scanner tries first, and the ones other products ship (Grafana's admin, Kafka examples' ...).
KNOWN_DEFAULT_SECRETS: frozenset[str] = frozenset(
    {
        "",
        "admin",
        "admin-secret",
        "alice-secret",
        "changeit",
        "changeme",
        "change-me",
        "default",
        "kafka",
        "llmops",
        "password",
        "secret",
        "test",
    }
)
#: API keys shown in llmops' own docs and examples (infra/gateway/auth.example.yaml, README, docstrings).
DEFAULT_API_KEYS: frozenset[str] = frozenset({"sk-mykey", "sk-llmops-dev-...", "sk-llmops-...", "your-key"})

_DEV_HINT = "set a real secret, or LLMOPS_DEV_MODE=true on a development machine only"


class DefaultSecretError(ValueError):
    """A setting holds a well-known default secret outside dev mode."""


def is_known_default(value: str) -> bool:
    """Whether ``value`` is a known default secret (case and surrounding blanks ignored)."""
    return value.strip().lower() in KNOWN_DEFAULT_SECRETS


def refuse_default_secrets(secrets: Mapping[str, SecretStr | str | None], *, dev_mode: bool) -> None:
    """Raise ``DefaultSecretError`` naming every setting whose secret is a known default; nothing in dev mode.

    A ``None`` value is an unset setting and is not checked: whether it is required is the setting's own rule.
    """
    if dev_mode:
        return
    bad = [
        name
        for name, value in secrets.items()
        if value is not None and is_known_default(value.get_secret_value() if isinstance(value, SecretStr) else value)
    ]
    if bad:
        msg = f"{', '.join(sorted(bad))}: a known default secret (or empty); {_DEV_HINT}"
        raise DefaultSecretError(msg)


def default_api_key_hashes() -> frozenset[str]:
    """sha256 (hex) of every known default secret and documented example key: the stored form of an API key."""
    return frozenset(hashlib.sha256(k.encode()).hexdigest() for k in KNOWN_DEFAULT_SECRETS | DEFAULT_API_KEYS)
