"""``llmops tenants check [--file F]``: validate the tenant configuration and print each tenant's effective settings.

Everything a stage would check at start, in one place: the file (or ``LLMOPS_TENANTS``), the old
per-stage variables merged into it (a field two of them set differently is an error), the registry
(models, aliases and their tenant lists) and the prompt templates. Exit 1 with the error named.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from services.gateway.auth import AuthConfig, RateLimit
from services.gateway.settings import GatewaySettings
from services.grounding.settings import GroundingSettings
from services.grounding.templates import TemplateStore
from services.preprocess.reply_policy import ReplyTopicPolicy
from services.preprocess.settings import PreprocessSettings
from services.preprocess.tenant_switches import TenantPolicyFile
from shared.cache import CacheSettings
from shared.models.registry import ModelRegistry
from shared.runtime.settings import CoreSettings
from shared.tenants import TenantConfigError, TenantsConfig
from shared.tenants.checks import check_registry, check_templates

__all__ = ["add_parser", "effective", "load_checked", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``llmops tenants check``."""
    tenants = sub.add_parser("tenants", help="check the tenant configuration (LLMOPS_TENANTS_FILE)")
    actions = tenants.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate it and print each tenant's effective settings")
    check.add_argument("--file", type=Path, help="the tenants file (default: LLMOPS_TENANTS_FILE or LLMOPS_TENANTS)")


def load_checked(file: Path | None = None) -> tuple[TenantsConfig, dict[str, Any]]:
    """The configuration every stage would build, checked as they check it; and the settings it was read with.

    ``file`` replaces ``LLMOPS_TENANTS_FILE`` and ``LLMOPS_TENANTS``. Raises ``TenantConfigError`` or
    ``ValidationError`` (a settings mistake, the tenant configuration's included).
    """
    core = CoreSettings(tenants_file=file, tenants=None) if file is not None else CoreSettings()
    pre = PreprocessSettings(core=core)
    grounding = GroundingSettings(core=core)
    gateway = GatewaySettings(core=core)
    cache = CacheSettings()
    old_auth = AuthConfig.from_yaml(gateway.auth_file) if gateway.auth_file else AuthConfig()
    if gateway.auth is not None:
        old_auth = old_auth.merged(gateway.auth)
    config = core.tenant_config(
        TenantPolicyFile.load(pre.tenants_path).as_source(f"LLMOPS_PREPROCESS_TENANTS_PATH ({pre.tenants_path})"),
        *old_auth.as_sources("LLMOPS_GATEWAY_AUTH_FILE"),
        grounding.tenant_templates_source(),
        cache.tenants_source(),
    )
    registry = ModelRegistry.load(core.registry_path, default=core.default_model)
    check_registry(config, registry)
    templates = TemplateStore.load(grounding.templates_dir)
    check_templates(config, templates.get)
    return config, {
        "core": core,
        "preprocess": pre,
        "grounding": grounding,
        "cache": cache.model_copy(update={"tenants": config.cache_overrides()}),
        "registry": registry,
    }


def effective(config: TenantsConfig, used: dict[str, Any]) -> dict[str, Any]:
    """Each declared tenant's settings as the stages will apply them (defaults filled in)."""
    core: CoreSettings = used["core"]
    pre: PreprocessSettings = used["preprocess"]
    grounding: GroundingSettings = used["grounding"]
    cache: CacheSettings = used["cache"]
    registry: ModelRegistry = used["registry"]
    replies = ReplyTopicPolicy(TenantPolicyFile.from_config(config), default_topic=core.topics.responses)
    out: dict[str, Any] = {}
    for name, tenant in config.tenants.items():
        rule = cache.rule(name)
        limit = tenant.gateway.rate_limit or RateLimit()
        out[name] = {
            "request_topic": core.topics.tenant_requests(name) if tenant.request_topic else None,
            "reply_topics": list(replies.patterns(name)),
            "quota": tenant.quota.model_dump(),
            "typo_correction": pre.typo_correction
            if tenant.preprocess.typo_correction is None
            else tenant.preprocess.typo_correction,
            "template": tenant.grounding.template or grounding.default_template,
            "cache": {"enabled": rule.enabled, "threshold": rule.threshold, "ttl_s": rule.ttl_s},
            "models": tenant.models or registry.names(tenant=name, aliases=True),
            "gateway": {
                "keys": [key.name or key.sha256[:8] for key in tenant.gateway.keys],
                "rate_limit": limit.model_dump(),
            },
        }
    return out


def run(args: argparse.Namespace) -> int:
    """Check the configuration: print each tenant's effective settings (0), or the error (1)."""
    try:
        config, used = load_checked(args.file)
    except ValidationError as exc:  # settings: the tenant configuration's own error inside, when it is one
        why = [
            str(e["ctx"]["error"]) if e["type"] == "value_error" else f"{e['loc']}: {e['msg']}" for e in exc.errors()
        ]
        print(f"tenants: error: {'; '.join(why)}", file=sys.stderr)  # noqa: T201
        return 1
    except (TenantConfigError, ValueError) as exc:
        print(f"tenants: error: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    shown: dict[str, Any] = {"tenants": effective(config, used)}
    if not config.tenants:
        shown = {"tenants": {}, "note": "no tenant declared: every stage keeps its defaults"}
    print(yaml.safe_dump(shown, sort_keys=False, default_flow_style=None).rstrip())  # noqa: T201
    return 0
