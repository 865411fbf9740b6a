"""Start-up checks of the tenant configuration against what it names: registry models and aliases, templates.

The model alone checks shapes and values (``config``); these checks need the registry or the
template folder, so the stage that has them calls them at start (and ``llmops tenants check``).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.models.registry import ModelRegistry
from shared.tenants.config import TenantConfigError, TenantsConfig

__all__ = ["check_registry", "check_templates"]


def check_registry(config: TenantsConfig, registry: ModelRegistry) -> None:
    """Each tenant's ``models`` are registry models or aliases open to it; the registry names only declared tenants.

    With no tenant declared (nothing configured) the registry's tenant lists are not checked.

    Example:
        >>> config = TenantsConfig.parse({"tenants": {"acme": {"models": ["gpt-9"]}}})
        >>> check_registry(config, ModelRegistry.load())
        Traceback (most recent call last):
        TenantConfigError: tenant 'acme': models: 'gpt-9' is not a registry model or alias; ...

    """
    problems: list[str] = []
    known = registry.names(aliases=True)
    for name, tenant in config.tenants.items():
        open_to_it = set(registry.names(tenant=name, aliases=True))
        for model in tenant.models:
            if model not in known:
                problems.append(
                    f"tenant {name!r}: models: {model!r} is not a registry model or alias; known: {', '.join(known)}"
                )
            elif model not in open_to_it:
                problems.append(f"tenant {name!r}: models: {model!r} is not open to the tenant in the registry")
    if config.tenants:
        declared = set(config.tenants)
        lists: list[tuple[str, list[str]]] = [
            (f"registry model {m.name!r}: tenants", m.tenants or []) for m in registry.models.values()
        ]
        for alias in registry.aliases.values():
            lists.append((f"alias {alias.name!r}: tenants", alias.tenants or []))
            lists.append((f"alias {alias.name!r}: overrides", list(alias.overrides)))
        for where, names in lists:
            problems += [f"{where}: {t!r} is not a declared tenant" for t in names if t not in declared]
    if problems:
        raise TenantConfigError(problems)


def check_templates(config: TenantsConfig, exists: Callable[[str], object]) -> None:
    """Each pinned ``grounding.template`` exists: ``exists(ref)`` raises ``KeyError`` for an unknown one.

    Example:
        >>> check_templates(TenantsConfig.parse({"tenants": {"acme": {"grounding": {"template": "concise@9"}}}}),
        ...                 TemplateStore.load().get)
        Traceback (most recent call last):
        TenantConfigError: tenant 'acme': grounding.template 'concise@9' is not a known template

    """
    problems = []
    for name, ref in config.templates().items():
        try:
            exists(ref)
        except KeyError:
            problems.append(f"tenant {name!r}: grounding.template {ref!r} is not a known template")
    if problems:
        raise TenantConfigError(problems)
