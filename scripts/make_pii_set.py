"""Generate the PII evaluation set: Faker values in hand-written sentence templates, a third hard negatives.

    PYTHONPATH=. python scripts/make_pii_set.py  # writes tests/data/safety/pii_eval.jsonl

Deterministic (fixed seed, Faker pinned in pyproject's dev extras). Each line is
``{"text", "entities": [{"type", "value"}], "kind": "positive" | "hard_negative"}``; hard
negatives look like personal data but are not (version numbers, order ids, ISBNs, dates,
card numbers that fail Luhn, SSNs in never-issued ranges, git hashes, UUIDs, prices).
Values: emails, phones (US formats, no extension), SSNs, IPv4/IPv6, IBANs (GB, DE, FR, ES, NL)
and person names come from Faker; card numbers are Faker's Visa/Mastercard/Amex/Discover;
locations are Faker's (real) countries, US states and German cities; API keys are random
strings in the published shapes (OpenAI, GitHub, AWS key id and secret, Slack, Google, Stripe).
"""

from __future__ import annotations

import json
import random
import string
import sys
from collections.abc import Callable
from pathlib import Path

from faker import Faker

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "safety" / "pii_eval.jsonl"
SEED = 20261128

fake = Faker("en_US")
fake_de = Faker("de_DE")
ibans = [Faker(loc) for loc in ("en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL")]
rng = random.Random(SEED)  # noqa: S311 - reproducible test data, not secrets


def _phone() -> str:
    area, mid, last = rng.randint(201, 989), rng.randint(200, 989), rng.randint(0, 9999)
    style = rng.choice(
        ["{a}-{m}-{l:04d}", "({a}) {m}-{l:04d}", "{a}.{m}.{l:04d}", "+1 {a} {m} {l:04d}", "+1-{a}-{m}-{l:04d}"]
    )
    return style.format(a=area, m=mid, l=last)


def _alnum(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _api_key() -> str:
    shapes: list[Callable[[], str]] = [
        lambda: "sk-" + _alnum(48),
        lambda: "sk-proj-" + _alnum(40),
        lambda: "ghp_" + _alnum(36),
        lambda: "AKIA" + _alnum(16, string.ascii_uppercase + string.digits),
        lambda: (
            _alnum(18, string.ascii_letters + string.digits)
            + "/"
            + _alnum(21, string.ascii_letters + "+" + string.digits)
        ),
        lambda: "xoxb-" + _alnum(11, string.digits) + "-" + _alnum(12, string.digits) + "-" + _alnum(24),
        lambda: "AIza" + _alnum(35, string.ascii_letters + string.digits + "_-"),
        lambda: "sk_live_" + _alnum(24),
    ]
    return rng.choice(shapes)()


def _location() -> str:
    return rng.choice([fake.country, fake.state, fake_de.city])()


def _person() -> str:
    return f"{fake.first_name()} {fake.last_name()}"


def _card() -> str:
    number = fake.credit_card_number(card_type=rng.choice(["visa16", "mastercard", "amex", "discover"]))
    if rng.random() < 0.5:  # noqa: PLR2004
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


VALUES: dict[str, Callable[[], str]] = {
    "EMAIL": fake.email,
    "PHONE": _phone,
    "CREDIT_CARD": _card,
    "US_SSN": fake.ssn,
    "IBAN": lambda: rng.choice(ibans).iban(),
    "IP_ADDRESS": lambda: fake.ipv4() if rng.random() < 0.75 else fake.ipv6(),  # noqa: PLR2004
    "PERSON": _person,
    "LOCATION": _location,
    "API_KEY": _api_key,
}

POSITIVE = [
    "Please send the invoice to {EMAIL} by Friday.",
    "You can reach me at {PHONE} after 5pm.",
    "My card number is {CREDIT_CARD}, can you check why it was declined?",
    "For the tax form my SSN is {US_SSN}.",
    "Wire the deposit to IBAN {IBAN} please.",
    "The server at {IP_ADDRESS} keeps timing out, any idea why?",
    "Write a short thank-you note to {PERSON} for the birthday present.",
    "What are the best things to do in {LOCATION} in spring?",
    "Why does my script fail with the key {API_KEY}?",
    "Hi, I'm {PERSON}, my email is {EMAIL} and my phone is {PHONE}.",
    "Book a table for {PERSON} and call them on {PHONE} to confirm.",
    "{PERSON} moved to {LOCATION} last year and wants to open a bank account.",
    "Can you format this contact: {PERSON}, {EMAIL}, {LOCATION}.",
    "Our firewall blocked {IP_ADDRESS}; the admin contact is {EMAIL}.",
    "Refund {CREDIT_CARD} and send the receipt to {EMAIL}.",
    "export OPENAI_API_KEY={API_KEY} is in my bashrc, is that safe?",
    "Payroll needs the SSN {US_SSN} and the IBAN {IBAN} for {PERSON}.",
    "Draft an email to {PERSON} about the meeting in {LOCATION}.",
    "Ping {IP_ADDRESS} and tell me if it answers.",
    "The customer {PERSON} called from {PHONE} about order delays.",
    "I'm flying from {LOCATION} to {LOCATION} next week, what should I pack?",
    "Store this token for later: {API_KEY}",
    "Is {EMAIL} a valid address format?",
    "config = {{'api_key': '{API_KEY}', 'region': 'eu-west-1'}}",
    "My bank account is {IBAN}, why was the transfer rejected?",
]

NEGATIVE = [
    "We upgraded to version {VERSION} last night and the build is green.",
    "Order {ORDER} shipped on {DATE} and should arrive within five days.",
    "The book has ISBN {ISBN}; is it still in print?",
    "The test card number {BADCARD} fails validation, which is expected.",
    "The meeting moved to {DATE} at {TIME}.",
    "Ticket {TICKET} was closed as a duplicate of {TICKET2}.",
    "The commit {SHA} introduced the regression.",
    "Request id {UUID} timed out after 30 seconds.",
    "It costs {PRICE} dollars including shipping, and weighs {WEIGHT} kg.",
    "Invoice number {INVOICE} is due on {DATE}.",
    "The form rejects {BADSSN} because that range is never issued.",
    "Set the timeout to {PORT} ms and retry {SMALL} times.",
    "Python {PYVER} removed the deprecated module; which release added it?",
    "Tracking number {TRACKING} shows it left the warehouse.",
    "Reset your password from the account settings page, then sign in again.",
    "Explain how an API key differs from an OAuth token.",
    "What is the difference between IPv4 and IPv6 addressing?",
    "The product code {SKU} is out of stock until {DATE}.",
    "Use the formula 3.14159 * r^2 for the area of a circle.",
    "Error code {ERRNO} means the disk is full.",
]


def _negative_values() -> dict[str, str]:
    bad = fake.credit_card_number(card_type="visa16")
    bad = bad[:-1] + str((int(bad[-1]) + 1) % 10)  # one digit off: fails Luhn
    return {
        "VERSION": rng.choice(
            [
                f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}",
                f"v{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}",
            ]
        ),
        "ORDER": f"ORD-{rng.randint(2019, 2026)}-{rng.randint(100000, 999999)}",
        # Faker's date()/time() are relative to today: drawn here so the file is the same on every run.
        "DATE": f"{rng.randint(1970, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "ISBN": rng.choice([fake.isbn13(), fake.isbn10()]),
        "BADCARD": bad,
        "TIME": f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
        "TICKET": f"JIRA-{rng.randint(100, 99999)}",
        "TICKET2": f"JIRA-{rng.randint(100, 99999)}",
        "SHA": fake.sha1()[: rng.choice([7, 12, 40])],
        "UUID": fake.uuid4(),
        "PRICE": f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}",
        "WEIGHT": f"{rng.randint(1, 99)}.{rng.randint(0, 9)}",
        "INVOICE": f"INV{rng.randint(10**7, 10**8 - 1)}",
        "BADSSN": rng.choice(["000", "666", f"9{rng.randint(10, 99)}"])
        + f"-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        "PORT": str(rng.randint(1000, 65000)),
        "SMALL": str(rng.randint(2, 9)),
        "PYVER": f"3.{rng.randint(6, 14)}",
        "TRACKING": f"1Z{_alnum(16, string.ascii_uppercase + string.digits)}",
        "SKU": f"SKU-{rng.randint(1000, 9999)}-{_alnum(3, string.ascii_uppercase)}",
        "ERRNO": str(rng.randint(100, 999)),
    }


def _fill(template: str, values: dict[str, Callable[[], str]]) -> tuple[str, list[dict[str, str]]]:
    entities: list[dict[str, str]] = []
    out, rest = [], template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        if tail.startswith("{"):  # an escaped brace
            out.append(head + "{")
            rest = tail[1:]
            continue
        name, _, rest = tail.partition("}")
        value = values[name]()
        if name in VALUES:
            entities.append({"type": name, "value": value})
        out.append(head + value)
    out.append(rest)
    return "".join(out).replace("}}", "}"), entities


def main() -> int:
    """Write the PII evaluation set."""
    Faker.seed(SEED)
    lines = []
    for i in range(220):
        text, entities = _fill(POSITIVE[i % len(POSITIVE)], VALUES)
        lines.append({"text": text, "entities": entities, "kind": "positive"})
    for i in range(110):
        negatives = _negative_values()
        text, _ = _fill(NEGATIVE[i % len(NEGATIVE)], {k: (lambda v=v: v) for k, v in negatives.items()})
        lines.append({"text": text, "entities": [], "kind": "hard_negative"})
    rng.shuffle(lines)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    print(f"wrote {len(lines)} lines to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
