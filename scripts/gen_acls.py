"""Write the five stage principals' ACLs in ``infra/secure/kafka-acls.txt`` from the topology.

``make docs`` rewrites each ``llmops-<stage>`` block of the file with ``shared.stack.acls.stage_acls``
(what ``shared.contracts.topology`` says the stage reads and writes); ``--check`` fails when the committed
file differs. The other principals (gateway, ingest, tenants, the topics job) are kept as written. Tenants
with their own request topic are the file's ``tenant-<name>`` principals.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from shared.contracts.topology import STAGES
from shared.runtime.settings import TopicSettings
from shared.stack.acls import Acl, parse_acls, principals, stage_acls

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "infra" / "secure" / "kafka-acls.txt"


def acl_line(acl: Acl) -> str:
    """One line in the file's column layout."""
    return f"{acl.principal:<18} {acl.operation:<15} {acl.pattern:<8} {acl.resource:<7} {acl.name}"


def render(text: str) -> str:
    """``text`` (the file) with every stage principal's lines replaced by the topology's, in place."""
    tenants = [p.removeprefix("tenant-") for p in principals(parse_acls(text)) if p.startswith("tenant-")]
    topics = TopicSettings(request_tenants=tenants)
    stage_users = {f"llmops-{stage}": stage for stage in STAGES}
    out: list[str] = []
    written: set[str] = set()
    for line in text.splitlines():
        fields = line.split()
        user = fields[0] if fields and not line.startswith("#") else None
        if user not in stage_users:
            out.append(line)
        elif user not in written:
            out += [acl_line(acl) for acl in stage_acls(stage_users[user], topics)]
            written.add(user)
    missing = [user for user in stage_users if user not in written]
    for user in missing:
        out += ["", *(acl_line(acl) for acl in stage_acls(stage_users[user], topics))]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Rewrite the file; with ``--check``, print what would change (a unified diff) and fail if anything would."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    current = OUT.read_text(encoding="utf-8")
    text = render(current)
    if not args.check:
        OUT.write_text(text, encoding="utf-8")
        return 0
    diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), "committed", "topology", lineterm=""))
    if diff:
        hint = f"{OUT.name}: the stage blocks are not the topology's; run `make docs`"
        print("\n".join([*diff, hint]), file=sys.stderr)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
