"""The old per-stage tenant variables, merged into the one configuration: never two sources silently disagreeing.

Each old variable (``LLMOPS_PREPROCESS_TENANTS_PATH``, ``LLMOPS_GATEWAY_AUTH_FILE``,
``LLMOPS_GROUNDING_TENANT_TEMPLATES``, ``LLMOPS_CACHE_TENANTS``, ``LLMOPS_TOPIC_REQUEST_TENANTS``) still
works: its stage turns it into a ``TenantSource`` of the unified shape, merged here with a warning
that it is deprecated. Where two sources set the same field of the same tenant to different values,
start fails naming the tenant, the field and both sources.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from shared.tenants.config import TenantConfigError, TenantsConfig, field_label

__all__ = ["TenantSource", "merge_sources"]

#: The old variables already warned about in this process (settings are built many times over).
_warned: set[tuple[str, tuple[str, ...]]] = set()

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class TenantSource:
    """One place tenant settings come from: its name (for errors and warnings) and its settings, unified shape."""

    name: str
    data: Mapping[str, Any] = field(default_factory=dict)
    deprecated: bool = True

    @property
    def empty(self) -> bool:
        """Whether it sets nothing (an old variable left unset)."""
        return not self.data.get("tenants") and not any(k != "tenants" for k in self.data)


def _leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every set field, by path; a list is one value (two sources' lists never mix)."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    else:
        yield path, value


def _put(tree: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        child = tree.get(str(key))
        if not isinstance(child, dict):
            child = tree[str(key)] = {}
        tree = child
    if isinstance(value, dict) and isinstance(tree.get(str(path[-1])), dict):
        return  # an empty table (a tenant declared with nothing set) adds nothing to what is there
    tree[str(path[-1])] = value


def _warn_deprecated(variable: str, tenants: list[str]) -> None:
    if (variable, tuple(tenants)) in _warned:
        return
    _warned.add((variable, tuple(tenants)))
    # Looked up at each warning (rare): a logger cached at import would miss later logging configuration.
    structlog.get_logger("llmops.tenants").warning(
        "tenants.deprecated_variable",
        variable=variable,
        tenants=tenants,
        use_instead="LLMOPS_TENANTS_FILE (docs/tenants.md)",
    )


def merge_sources(*sources: TenantSource) -> TenantsConfig:
    """One configuration from ``sources`` (the unified one first); a field two of them set differently fails.

    Example:
        >>> unified = TenantSource("LLMOPS_TENANTS_FILE", {"tenants": {"acme": {"cache": {"enabled": True}}}}, False)
        >>> old = TenantSource("LLMOPS_CACHE_TENANTS", {"tenants": {"acme": {"cache": {"enabled": False}}}})
        >>> merge_sources(unified, old)
        Traceback (most recent call last):
        TenantConfigError: tenant 'acme': cache.enabled is true in LLMOPS_TENANTS_FILE but false in LLMOPS_CACHE_TENANTS

    """
    tree: dict[str, Any] = {}
    set_by: dict[Path, tuple[Any, str]] = {}
    problems: list[str] = []
    for source in sources:
        if source.empty:
            continue
        explicit = TenantsConfig.parse(dict(source.data), source=source.name).explicit()
        if source.deprecated:
            _warn_deprecated(source.name, sorted(explicit.get("tenants", {})))
        for path, value in _leaves(explicit):
            earlier = set_by.get(path)
            if earlier is not None and earlier[0] != value and value != {}:
                problems.append(
                    f"{field_label(path)} is {json.dumps(earlier[0])} in {earlier[1]} "
                    f"but {json.dumps(value)} in {source.name}"
                )
                continue
            if earlier is None:
                set_by[path] = (value, source.name)
            _put(tree, path, value)
    if problems:
        raise TenantConfigError(problems)
    return TenantsConfig.parse(tree, source=" + ".join(s.name for s in sources if not s.empty))
