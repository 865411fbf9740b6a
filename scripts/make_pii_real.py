"""Write the second PII evaluation set: real-looking text unlike the Faker templates.

    PYTHONPATH=. python scripts/make_pii_real.py  # writes tests/data/safety/pii_real.jsonl

Every text below was written by hand for this project (no corpus was copied): résumés,
emails and signatures, support tickets, address lists, multilingual contact cards, chat
messages, and hard negatives (version numbers, ISBNs, prices in word problems, card numbers
that fail Luhn, placeholders for secrets). All people, companies and numbers are invented.

Values are marked inline as ``[[TYPE:value]]``; the script removes the marks and records
``{"type", "value"}``. Two marks compute check digits so that the numbers are valid: a card
written ``~4000 1234 5678 901?`` gets its Luhn digit in place of ``?``, and an IBAN written
``~DE?? 3704 0044 0532 0130 00`` gets its ISO 13616 check digits in place of ``??``. Each
line also carries ``kind`` (the genre, so ``llmops eval-safety`` can report per kind) and
``source`` (``llmops/pii-real``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from shared.guards.detectors import luhn_valid

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "safety" / "pii_real.jsonl"
_MARK = re.compile(r"\[\[([A-Z_]+):(.+?)\]\]", re.DOTALL)

TEXTS: list[tuple[str, str]] = [
    # ------------------------------------------------------------------ résumés
    (
        "resume",
        (
            "[[PERSON:Daniela Ferreira]]\nSenior Backend Engineer\n[[LOCATION:Rua das Flores 112, 4050-262 Porto, "
            "Portugal]]\n[[PHONE:+351 912 345 678]] | [[EMAIL:daniela.ferreira@correio.example]]\n\nSUMMARY\n"
            "Eight years building payment systems in Java and Go.\n\nEXPERIENCE\nLead Engineer, Tramway Pay "
            "(2020-2025)\nEngineer, Bluefin Systems (2016-2020)\n\nEDUCATION\nMSc Informatics, University of "
            "[[LOCATION:Porto]]\n\nREFERENCES\nAvailable on request."
        ),
    ),
    (
        "resume",
        (
            "CURRICULUM VITAE\n\nName: [[PERSON:Jonas Weber]]\nAddress: [[LOCATION:Lindenstraße 14\n10969 "
            "Berlin]]\nMobile: [[PHONE:0151 2345 6789]]\nE-mail: [[EMAIL:j.weber@post.example.de]]\n\nProfile\n"
            "Logistics coordinator with a forklift licence and SAP experience.\n\nWork Experience\n2018 - today "
            "Dispatcher, Nordkurier Logistik\n\nLanguages\nGerman, English, Polish"
        ),
    ),
    (
        "resume",
        (
            "[[PERSON:PRIYA NAIR]]\n[[EMAIL:priya.nair.dev@mailbox.example]] · [[PHONE:(415) 555-0199]] · "
            "[[LOCATION:San Francisco, CA]]\n\nSkills\nReact, TypeScript, GraphQL, accessibility audits\n\n"
            "Projects\nBuilt an open-source screen-reader test harness used by 40 teams.\n\nCertifications\n"
            "AWS Certified Developer"
        ),
    ),
    (
        "resume",
        (
            "Objective\nTo join a small team as a junior nurse.\n\nContact\n[[PERSON:amelia j. rossi]]\n"
            "[[LOCATION:22 kingsway road, flat 3, leeds ls6 2ab]]\n[[PHONE:07700 900123]]\n\nEducation\nBSc "
            "Nursing (Adult), 2024\n\nHobbies\nCycling, choir"
        ),
    ),
    (
        "resume",
        (
            "Résumé - [[PERSON:Lucas Moreau]]\n[[LOCATION:18 rue de la République, 69002 Lyon]]\nTél. : "
            "[[PHONE:04 78 12 34 56]] - Portable : [[PHONE:06.12.34.56.78]]\n[[EMAIL:lucas.moreau@courriel.example]]"
            "\n\nExpérience\nChef de projet, Atelier Soie (2019-2025)"
        ),
    ),
    # ------------------------------------------------------------------ emails and signatures
    (
        "email",
        (
            "Hi team,\n\nI'll be out next week. For anything urgent, call [[PERSON:Marco Bianchi]] on "
            "[[PHONE:+39 347 123 4567]] or write to [[EMAIL:m.bianchi@studio-verde.example]].\n\nBest,\n"
            "[[PERSON:Giulia Conti]]\nStudio Verde | [[LOCATION:Via Roma 25, 20121 Milano]]"
        ),
    ),
    (
        "email",
        (
            "Dear [[PERSON:Mr. Okonkwo]],\n\nThank you for your application. Please send the signed contract to "
            "our office at [[LOCATION:1200 Harbor Blvd, Suite 400, Oakland, CA 94607]] or scan it to "
            "[[EMAIL:hr@harborline.example]].\n\nKind regards,\n[[PERSON:Sarah M. Lindqvist]]\nPeople Team"
        ),
    ),
    (
        "email",
        (
            "From: [[PERSON:Kenji Watanabe]] <[[EMAIL:kenji.w@ryokan-hoshi.example]]>\nTo: bookings\nSubject: "
            "Re: group stay\n\nWe can offer six rooms from the 3rd to the 7th. A deposit of 30% is due by bank "
            "transfer to [[IBAN:~GB?? NWBK 6016 1331 9268 19]]. Our number is [[PHONE:+81 3-1234-5678]].\n\nKenji"
        ),
    ),
    (
        "email",
        (
            "hey, it's [[PERSON:tom becker]] from the climbing gym. my new number is [[PHONE:+44 7911 123456]], "
            "the old one is dead. also can you send the waiver to [[EMAIL:tombecker88@mail.example]]? cheers"
        ),
    ),
    (
        "email",
        (
            "Bonjour [[PERSON:Claire]],\n\nVoici les coordonnées de notre nouveau fournisseur : [[PERSON:Antoine "
            "Lefebvre]], [[LOCATION:7 avenue Jean Médecin, 06000 Nice]], tél. [[PHONE:+33 (0)4 93 12 34 56]].\n\n"
            "Cordialement,\n[[PERSON:Sophie Martin]]"
        ),
    ),
    (
        "email",
        (
            "Hallo [[PERSON:Frau Keller]],\n\nbitte überweisen Sie den Betrag auf das Konto [[IBAN:~CH?? 0483 5012 "
            "3456 7800 9]]. Bei Fragen erreichen Sie mich unter [[PHONE:+41 (0)44 668 18 00]].\n\nFreundliche "
            "Grüsse\n[[PERSON:Reto Baumann]]\n[[LOCATION:Bahnhofstrasse 45, 8001 Zürich]]"
        ),
    ),
    (
        "email",
        (
            "Thanks for joining! Your welcome pack is on its way to [[LOCATION:88 Queen Street West, Toronto, ON "
            "M5H 2N2]]. Questions? Reply here or ring [[PHONE:1-416-555-0142]].\n\n-- [[PERSON:Aisha Rahman]], "
            "Member Services"
        ),
    ),
    (
        "email",
        (
            "Signature:\n[[PERSON:Henrik Olsen]]\nSenior Consultant\nMobil: [[PHONE:22 33 44 55]]\n"
            "[[EMAIL:henrik.olsen@fjord-consult.example]]\n[[LOCATION:Storgata 10, 0155 Oslo]]"
        ),
    ),
    # ------------------------------------------------------------------ support tickets and chats
    (
        "ticket",
        (
            "Ticket #88213\nCustomer: [[PERSON:Fatima Zahra El Amrani]]\nIssue: my card [[CREDIT_CARD:~6759 6498 "
            "2643 845?]] was charged twice for the same order. Please refund one of the charges.\nCallback: "
            "[[PHONE:+212 6 12 34 56 78]]"
        ),
    ),
    (
        "ticket",
        (
            "Priority: high\nReporter: [[EMAIL:ops-oncall@brightwave.example]]\nThe VPN gateway at [[IP_ADDRESS:"
            "203.0.113.45]] drops connections every ten minutes. Secondary gateway [[IP_ADDRESS:2001:db8:85a3::8a2e:"
            "370:7334]] is fine. Started after the 4.2.1 firmware update."
        ),
    ),
    (
        "ticket",
        (
            "Customer says: 'hi my name is [[PERSON:olivia grant]] and i cant log in since yesterday. my phone is "
            "[[PHONE:0412 345 678]] if you need to call.' Account region: [[LOCATION:Brisbane]]."
        ),
    ),
    (
        "ticket",
        (
            "Chargeback dispute. Cardholder [[PERSON:Dmitri Volkov]], card ending in 4417, full number on file "
            "[[CREDIT_CARD:~2200 7001 2345 678?]]. Merchant ID 4471902. Amount EUR 129.90."
        ),
    ),
    (
        "ticket",
        (
            "Please update the payout account for vendor 5521 to [[IBAN:~NL?? ABNA 0417 1643 00]] (was "
            "[[IBAN:~NL?? RABO 0123 4567 89]]). Confirmed by phone with [[PERSON:Pieter de Vries]] on "
            "[[PHONE:020 123 4567]]."
        ),
    ),
    (
        "ticket",
        (
            "Bug report from [[PERSON:Lena Hoffmann]]: after setting OPENAI_API_KEY=[[API_KEY:sk-proj-7fQ2xLmP9aR"
            "3tV8wK1nB5cY0dZ6eH4gJ2sU]] in .env the app still says the key is missing."
        ),
    ),
    (
        "chat",
        "[[PERSON:raj]]: can u text me the gate code?\n[[PERSON:mei]]: sure, call me first, [[PHONE:9123 4567]]",
    ),
    (
        "chat",
        (
            "[09:14] [[PERSON:Carlos Mendoza]]: the new office is at [[LOCATION:Calle de Alcalá 48, 28014 Madrid]], "
            "third floor\n[09:15] [[PERSON:Ana Ruiz]]: perfect, see you there"
        ),
    ),
    (
        "chat",
        (
            "just moved to [[LOCATION:lisbon]] and looking for a dentist near [[LOCATION:avenida da liberdade]], any "
            "recommendations?"
        ),
    ),
    (
        "chat",
        "My SSN is [[US_SSN:457-55-5462]] and my date of birth is 4 March 1988, can you check my benefits status?",
    ),
    (
        "chat",
        (
            "for the background check they need my social security number, [[US_SSN:212 67 4589]], and my "
            "previous address [[LOCATION:4521 Maple Ave, Apt 2B, Columbus, OH 43214]]"
        ),
    ),
    (
        "chat",
        "Is this Maestro card still valid? [[CREDIT_CARD:~5018 0000 0009 0?]] It keeps getting declined abroad.",
    ),
    (
        "chat",
        (
            "pls charge the deposit to [[CREDIT_CARD:~3782 822463 1000?]] and email the receipt to "
            "[[EMAIL:finance+receipts@kiteworks.example]]"
        ),
    ),
    (
        "chat",
        "UnionPay card: [[CREDIT_CARD:~6212 3456 7890 1234 56?]], expiry 09/28. Why does checkout reject it?",
    ),
    (
        "chat",
        (
            "I'm [[PERSON:Noor Haddad]], I live in [[LOCATION:Amman]] and I'm moving to [[LOCATION:Montreal]] in "
            "August for my PhD."
        ),
    ),
    (
        "chat",
        (
            "we flew from [[LOCATION:Nairobi]] to [[LOCATION:Zanzibar]] and then took the ferry to "
            "[[LOCATION:Dar es Salaam]], would you recommend the same route?"
        ),
    ),
    # ------------------------------------------------------------------ address lists and contact cards
    (
        "addresses",
        (
            "Shipping list\n1. [[PERSON:Grace Kim]], [[LOCATION:301 Pine St, Seattle, WA 98101]]\n2. [[PERSON:Tomás "
            "Novák]], [[LOCATION:Vinohradská 12, 120 00 Praha 2]]\n3. [[PERSON:Elif Yılmaz]], [[LOCATION:Bağdat "
            "Caddesi 155, 34728 Kadıköy, İstanbul]]\n4. [[PERSON:Sean O'Brien]], [[LOCATION:14 Harcourt Street, "
            "Dublin 2, D02 YX88]]"
        ),
    ),
    (
        "addresses",
        (
            "Delivery addresses (do not share):\n[[LOCATION:Flat 12, 5 Albion Road\nLondon\nN16 9PR\nUnited "
            "Kingdom]]\n\n[[LOCATION:Kerkstraat 101\n1017 GD Amsterdam\nNetherlands]]"
        ),
    ),
    (
        "addresses",
        (
            "ship to: [[PERSON:maria lopez]], [[LOCATION:742 evergreen terrace, springfield, il 62704]], phone "
            "[[PHONE:217-555-0113]]"
        ),
    ),
    (
        "contact card",
        (
            "BEGIN:VCARD\nFN:[[PERSON:Ingrid Johansson]]\nTEL;TYPE=cell:[[PHONE:+46 70 123 45 67]]\n"
            "EMAIL:[[EMAIL:ingrid.johansson@norrsken.example]]\nADR:;;[[LOCATION:Drottninggatan 53;Stockholm;;111 21;"
            "Sweden]]\nEND:VCARD"
        ),
    ),
    (
        "contact card",
        (
            "Nombre: [[PERSON:Javier Castillo Ortega]]\nTeléfono: [[PHONE:+34 612 34 56 78]]\nCorreo: "
            "[[EMAIL:javier.castillo@buzon.example]]\nDirección: [[LOCATION:Avenida de la Constitución 21, 41004 "
            "Sevilla]]"
        ),
    ),
    (
        "contact card",
        (
            "Kontakt\n[[PERSON:Katarzyna Nowak]]\ntel. [[PHONE:+48 601 234 567]]\n[[LOCATION:ul. Floriańska 3, "
            "31-019 Kraków]]"
        ),
    ),
    (
        "contact card",
        (
            "Name: [[PERSON:Alessandro Greco]]\nTel: [[PHONE:06 1234 5678]]\nIndirizzo: [[LOCATION:Via del Corso "
            "120, 00186 Roma]]\nEmail: [[EMAIL:a.greco@posta.example.it]]"
        ),
    ),
    (
        "contact card",
        "Contact: [[PERSON:Yusuf Demir]] - Tel [[PHONE:+90 532 123 45 67]] - [[EMAIL:ydemir@ankara-tech.example]]",
    ),
    (
        "contact card",
        (
            "Emergency contact: [[PERSON:Hannah Schmidt]] (sister), [[PHONE:+49 170 1234567]], "
            "[[LOCATION:Hauptstr. 7, 69117 Heidelberg]]"
        ),
    ),
    (
        "contact card",
        (
            "Contact us: [[PHONE:+44 20 7946 0958]] | [[EMAIL:hello@kettleandcrumb.example]] | [[LOCATION:27 Old "
            "Gloucester Street, London WC1N 3AX]]"
        ),
    ),
    (
        "contact card",
        "Kantoor: [[PHONE:+31 (0)20 794 0000]] · [[LOCATION:Herengracht 420, 1017 BZ Amsterdam]]",
    ),
    (
        "contact card",
        "Tel. [[PHONE:01 42 68 53 00]] / fax 01 42 68 53 01\n[[LOCATION:12 boulevard Haussmann, 75009 Paris]]",
    ),
    (
        "contact card",
        "call [[PERSON:ahmed]] on [[PHONE:+447700900456]] or whatsapp [[PHONE:+971 50 123 4567]]",
    ),
    (
        "contact card",
        "Reach our Copenhagen desk on [[PHONE:33-12-45-67]] between 9 and 16.",
    ),
    # ------------------------------------------------------------------ infrastructure and secrets
    (
        "config",
        (
            "deploy.env\nDB_HOST=[[IP_ADDRESS:10.20.30.40]]\nDB_PASSWORD=${DB_PASSWORD}\nSTRIPE_KEY=[[API_KEY:sk_live_"
            "51HqLyjWDarjtT1zdp7dcXnA8]]\nAWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX\nSENTRY_DSN=$SENTRY_DSN"
        ),
    ),
    (
        "config",
        (
            "Our CI used the token [[API_KEY:ghp_R8sK2mLq9VtX4wZ7yB1nC5dF3gH6jP0aE2uT]] by mistake; I've rotated it. "
            "The template now says GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx."
        ),
    ),
    (
        "config",
        (
            "Slack webhook bot token: [[API_KEY:xoxb-2048116372-7391826450-Qm8Lk2Zr5Tn9Xw3Vb6Hc1Jd4]]. The server "
            "[[IP_ADDRESS:192.0.2.17]] posts alerts with it."
        ),
    ),
    (
        "config",
        (
            "aws configure printed:\naws_access_key_id = [[API_KEY:AKIAIOSFODNN7EXAMPL3]]\naws_secret_access_key = "
            "[[API_KEY:wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKE9]]"
        ),
    ),
    (
        "config",
        (
            'In the docs, write api_key = "YOUR_API_KEY_HERE" and token: <your-token>, never a real '
            "value. Read it with os.environ['OPENAI_API_KEY'] or {{ secrets.HF_TOKEN }}."
        ),
    ),
    (
        "config",
        (
            "Hugging Face token [[API_KEY:hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789]] leaked in the notebook; "
            "the placeholder in the README is hf_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX."
        ),
    ),
    # ------------------------------------------------------------------ hard negatives
    ("negative", "We pinned numpy 1.26.4 and Django 4.2.11; the release notes for 5.0.3 mention a fix."),
    ("negative", "The ISBN of the second edition is 978-0-13-468599-1 and the first was 0-201-63361-2."),
    (
        "negative",
        (
            "A shop sells pencils at 0.45 each and notebooks at 2.99. If a pupil buys 12 pencils and 3 notebooks, "
            "how much does he pay in total?"
        ),
    ),
    ("negative", "The test number 4111 1111 1111 1112 fails Luhn, so the form rejects it, as it should."),
    ("negative", "Order 2024-118-55731 shipped; tracking 1Z999AA10123456784 shows it in transit."),
    ("negative", "Build 3.14.159.26 failed on step 12 of 40 after 1,234 seconds."),
    ("negative", "The EAN 4006381333931 is printed under the barcode; the ISSN is 0378-5955."),
    ("negative", "In 2023, 17,500 runners finished; the median time was 4:12:30 and 3,201 ran under 3:30."),
    ("negative", "Set DATABASE_URL to postgres://user:${DB_PASSWORD}@localhost/app in your local .env file."),
    ("negative", "Invoice INV-0042-7719 totals 1,249.00 EUR, payable within 30 days."),
    ("negative", "Use AKIAXXXXXXXXXXXXXXXX and sk-xxxxxxxxxxxxxxxxxxxxxxxx as placeholders in the tutorial."),
    ("negative", "Call the function with timeout=30000 and retries=5; port 8443 must be open."),
    ("negative", "The patent US 10,123,456 B2 cites 38 earlier filings."),
    ("negative", "Temperature rose from 12.5 to 31.75 degrees between 06:00 and 15:00."),
    ("negative", "Apartment prices rose 4.7% to 5,320 per square metre in the third quarter."),
    ("negative", "The UUID 9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f identifies the tenant in the logs."),
    ("negative", "Item SKU 100-2045-33 is back in stock; 48 units at 19.99 each."),
    ("negative", "Card 5500 0000 0000 0005 is a documented test number with a wrong check digit for production."),
    ("negative", "export API_TOKEN=$API_TOKEN\nexport SECRET_KEY=%SECRET_KEY%"),
    ("negative", "Version 10.0.19045.3693 of Windows is installed on 124 machines."),
    ("negative", "EXPERIENCE\nEDUCATION\nSKILLS\nREFERENCES\nLANGUAGES"),
    (
        "negative",
        "If a train leaves at 14:05 and travels 312 km at 96 km/h, at what time does it arrive? Show the steps.",
    ),
    ("negative", "Section 4.2.1 of RFC 7231 defines the GET method; see also page 112."),
    ("negative", "The lottery numbers were 04 11 23 35 41 and the bonus ball 07."),
]


def _luhn_digit(partial: str) -> str:
    return next(d for d in "0123456789" if luhn_valid(partial + d))


def _complete(value: str) -> str:
    if not value.startswith("~"):
        return value
    value = value[1:]
    if value.endswith("?") and value.count("?") == 1:  # a card: Luhn digit
        return value[:-1] + _luhn_digit(re.sub(r"\D", "", value[:-1]))
    compact = value.replace(" ", "")  # an IBAN: mod-97 check digits
    moved = compact[4:] + compact[:2] + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in moved)) % 97
    return value.replace("??", f"{check:02d}", 1)


def parse(marked: str) -> tuple[str, list[dict[str, str]]]:
    """The text without marks, and its entities in order."""
    entities: list[dict[str, str]] = []

    def keep(m: re.Match[str]) -> str:
        value = _complete(m.group(2))
        entities.append({"type": m.group(1), "value": value})
        return value

    return _MARK.sub(keep, marked), entities


def main() -> int:
    """Write the set."""
    lines = []
    for kind, marked in TEXTS:
        text, entities = parse(marked)
        lines.append({"text": text, "entities": entities, "kind": kind, "source": "llmops/pii-real"})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    counts: dict[str, int] = {}
    for line in lines:
        for e in line["entities"]:
            counts[e["type"]] = counts.get(e["type"], 0) + 1
    print(f"wrote {len(lines)} lines to {OUT}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
