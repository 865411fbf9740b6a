"""``llmops``: run the embedded stack, ask questions, manage models, topics and the knowledge base."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import uuid
from collections.abc import Callable, Sequence

from shared.cli import canary as canary_cli
from shared.cli import dlq
from shared.cli import eval as eval_cli
from shared.cli import replay as replay_cli
from shared.cli import safety as safety_cli
from shared.cli import tenants as tenants_cli
from shared.cli import usage as usage_cli
from shared.cli.gateway import add_gateway_arguments, dev_auth_env, gateway_banner
from shared.cli.ingest import add_parser as add_ingest_parser
from shared.cli.ingest import run_ingest
from shared.cli.render import format_answer, format_timings
from shared.client import LlmopsClient
from shared.contracts.envelope import Envelope
from shared.knowledge.settings import KnowledgeSettings
from shared.models.model_store import ModelIntegrityError, ModelMissingError, ensure_local, fetch_model
from shared.models.registry import ModelRegistry
from shared.runtime.logging import configure_logging
from shared.runtime.settings import CoreSettings
from shared.stack.brokers import BROKER_KINDS
from shared.stack.embedded import STAGES, EmbeddedStack
from shared.stack.kafka_jars import KAFKA_VERSION
from shared.stack.topics import ensure_topics

__all__ = ["main"]


def _scale(values: Sequence[str]) -> dict[str, int]:
    scale: dict[str, int] = {}
    for value in values:
        stage, _, count = value.partition("=")
        if stage not in STAGES or not count.isdigit() or int(count) < 1:
            msg = f"--scale takes STAGE=N with STAGE in {', '.join(STAGES)}, not {value!r}"
            raise argparse.ArgumentTypeError(msg)
        scale[stage] = int(count)
    return scale


async def _chat(core: CoreSettings, conversation: str | None) -> None:
    conversation = conversation or uuid.uuid4().hex[:12]
    print(f"llmops chat · conversation {conversation} · empty line or Ctrl-D to quit")  # noqa: T201
    async with LlmopsClient(core) as client:
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            if not line.strip():
                break
            answer = await client.ask(line, conversation_id=conversation, raise_on_error=False)
            print(f"llm> {format_answer(answer)}")  # noqa: T201
            print(f"     [{format_timings(answer)}]")  # noqa: T201


async def _up(core: CoreSettings, args: argparse.Namespace) -> int:
    gateway_env, dev_key = ({}, None) if args.no_gateway else dev_auth_env()
    scale = _scale(args.scale)
    if KnowledgeSettings().local:
        # Qdrant local mode: one process may open the folder, so one grounding replica owns it.
        if scale.get("grounding", 1) > 1:
            print("note: LLMOPS_QDRANT_URL is not set (Qdrant local mode): grounding runs as 1 replica")  # noqa: T201
        scale["grounding"] = 1
        print("knowledge base: Qdrant local mode, owned by the one grounding replica (`llmops ingest` goes through it)")  # noqa: T201
    stack = EmbeddedStack(
        core,
        external=args.external,
        scale=scale,
        extra_env=gateway_env,
        gateway_port=None if args.no_gateway else args.gateway_port,
        broker=args.broker,
    )
    core = stack.core  # the settings that suit the broker (the chat below is a client too)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(f"starting the pipeline on {_broker_name(stack)} at {core.kafka.bootstrap} (logs in {stack.log_dir}) ...")  # noqa: T201
        await stack.start(timeout=args.timeout)
        print("ready: " + ", ".join(s.name for s in stack.services))  # noqa: T201
        if stack.gateway_url:
            print(gateway_banner(stack.gateway_url, dev_key))  # noqa: T201
        supervisor = asyncio.create_task(stack.supervise(stop))
        if args.chat:
            chat = asyncio.create_task(_chat(core, None))
            await asyncio.wait([chat, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            chat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await chat
        else:
            print("press Ctrl-C to stop")  # noqa: T201
            await stop.wait()
        await supervisor
    finally:
        print("stopping ...")  # noqa: T201
        await asyncio.to_thread(stack.stop)
    return 0


def _broker_name(stack: EmbeddedStack) -> str:
    """Which broker the stack runs on, as the banner says it."""
    if stack.broker_kind == "kafka":
        return f"Apache Kafka {KAFKA_VERSION} (from Maven, KRaft, a temporary log directory)"
    if stack.broker_kind == "tansu":
        return "the embedded Tansu broker (memory only)"
    return "the external broker"


async def _ask(core: CoreSettings, args: argparse.Namespace) -> int:
    async with LlmopsClient(core) as client:
        answer: Envelope = await client.ask(
            args.question,
            conversation_id=args.conversation,
            model=args.model,
            timeout=args.timeout,
            raise_on_error=False,
            max_tokens=args.max_tokens,
        )
    if args.json:
        print(answer.model_dump_json(indent=2))  # noqa: T201
    else:
        print(format_answer(answer))  # noqa: T201
        print(f"[{format_timings(answer)}]", file=sys.stderr)  # noqa: T201
    return 1 if answer.error is not None else 0


def _models(core: CoreSettings, args: argparse.Namespace) -> int:
    registry = ModelRegistry.load(core.registry_path, default=core.default_model)
    # An alias stands for its variants: fetching or verifying it covers every model it routes to.
    requested = args.names or registry.names()
    names = list(dict.fromkeys(m for n in requested for m in _alias_models(registry, n)))
    status = 0
    for name in names:
        entry = registry.get(name)
        if args.action == "fetch":
            present = entry.path_in(core.models_dir).is_file()
            path = fetch_model(entry, core.models_dir)
            how = "present, size checked; `llmops models verify` hashes it" if present else "assembled, sha256 verified"
            print(f"{name}: {path} ({how})")  # noqa: T201
            continue
        try:
            path = ensure_local(entry, core.models_dir, verify_hash=args.action == "verify")
            state = "ok" if args.action == "verify" else "present"
        except (ModelMissingError, ModelIntegrityError) as exc:
            state, status = str(exc), 1
        default = " (default)" if name == registry.default else ""
        print(f"{name}{default}: {entry.chat_format}, n_ctx {entry.n_ctx}: {state}")  # noqa: T201
    for alias in registry.aliases.values():
        if args.action == "list" and (not args.names or alias.name in args.names):
            default = " (default)" if alias.name == registry.default else ""
            split = ", ".join(f"{m} {share:.0%}" for m, share in alias.shares("").items())
            overrides = f"; overrides for {', '.join(sorted(alias.overrides))}" if alias.overrides else ""
            print(f"{alias.name}{default}: alias, {split}{overrides}")  # noqa: T201
    return status


def _alias_models(registry: ModelRegistry, name: str) -> list[str]:
    """The models ``name`` stands for: itself, or an alias's variants (an unknown name fails as in ``get``)."""
    alias = registry.aliases.get(name)
    return (
        [v.model for v in alias.variants] + [m.model for o in alias.overrides.values() for m in o]
        if alias
        else [registry.get(name).name]
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the embedded stack (broker, topics, the five services, the gateway)")
    up.add_argument("--external", action="store_true", help="use the broker already at LLMOPS_KAFKA_BOOTSTRAP")
    up.add_argument(
        "--broker",
        choices=BROKER_KINDS,
        default="tansu",
        help="the broker to start: tansu (embedded, memory only; the default) or kafka (Apache Kafka; `make kafka`)",
    )
    up.add_argument("--scale", action="append", default=[], metavar="STAGE=N", help="replicas of a stage")
    up.add_argument("--chat", action="store_true", help="open an interactive chat once ready; stop when it ends")
    up.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for readiness")
    add_gateway_arguments(up)

    ask = sub.add_parser("ask", help="send one question and print the answer with each stage's time")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the whole final envelope")
    ask.add_argument("--conversation", help="conversation id (memory is per conversation)")
    ask.add_argument("--model", help="registry model name")
    ask.add_argument("--max-tokens", type=int, default=256)
    ask.add_argument("--timeout", type=float, default=120.0)

    chat = sub.add_parser("chat", help="interactive chat against a running pipeline")
    chat.add_argument("--conversation")

    models = sub.add_parser("models", help="list, fetch or verify registry models")
    models.add_argument("action", choices=["list", "fetch", "verify"])
    models.add_argument("names", nargs="*")

    sub.add_parser("topics", help="create the pipeline's topics on LLMOPS_KAFKA_BOOTSTRAP")
    dlq.add_parser(sub)
    usage_cli.add_parser(sub)
    canary_cli.add_parser(sub)
    add_ingest_parser(sub)
    eval_cli.add_parser(sub)
    replay_cli.add_parser(sub)
    safety_cli.add_parsers(sub)
    tenants_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmops`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "tenants":  # before CoreSettings: a mistake in the tenant configuration is what it reports
        return tenants_cli.run(args)
    core = CoreSettings()
    # The chat owns the terminal: the launcher only reports problems there (services log to files).
    quiet = args.command in {"chat", "ask", "usage", "canary", "eval", "replay", *safety_cli.COMMANDS} or (
        args.command == "up" and args.chat
    )
    configure_logging("WARNING" if quiet else core.log_level, core.log_format)
    return _COMMANDS[args.command](core, args)


def _run_chat(core: CoreSettings, args: argparse.Namespace) -> int:
    asyncio.run(_chat(core, args.conversation))
    return 0


def _topics(core: CoreSettings, _args: argparse.Namespace) -> int:
    created = asyncio.run(ensure_topics(core.kafka, core.topics.all(), core.topics.configs()))
    print(f"created: {', '.join(created) or 'nothing (all exist)'}")  # noqa: T201
    return 0


# One entry per subcommand: name → what runs it (each takes the settings and the parsed arguments).
_COMMANDS: dict[str, Callable[[CoreSettings, argparse.Namespace], int]] = {
    "up": lambda core, args: asyncio.run(_up(core, args)),
    "ask": lambda core, args: asyncio.run(_ask(core, args)),
    "chat": _run_chat,
    "models": _models,
    "topics": _topics,
    "dlq": lambda core, args: asyncio.run(dlq.run(core, args)),
    "usage": lambda core, args: asyncio.run(usage_cli.run(core, args)),
    "canary": lambda core, args: asyncio.run(canary_cli.run(core, args)),
    "ingest": lambda core, args: asyncio.run(run_ingest(core, args)),
    "eval": eval_cli.run,
    "replay": replay_cli.run,
    **{name: lambda _core, args: safety_cli.run(args) for name in safety_cli.COMMANDS},
}

if __name__ == "__main__":
    sys.exit(main())
