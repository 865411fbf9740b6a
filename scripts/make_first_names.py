"""Write the first-name list the PERSON detector uses: given names of 20 locales from Faker's person providers.

    PYTHONPATH=. python scripts/make_first_names.py  # writes shared/guards/first_names.txt

Faker (MIT licence, pinned in pyproject's dev extras) ships given-name lists per locale; the
names of two to thirteen letters are kept, sorted, one per line. Faker is not needed at run time.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import faker

OUT = Path(__file__).resolve().parents[1] / "shared" / "guards" / "first_names.txt"
LOCALES = (
    "en_US", "en_GB", "en_IE", "en_IN", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_PT", "pt_BR",
    "pl_PL", "tr_TR", "sv_SE", "no_NO", "da_DK", "cs_CZ", "fi_FI", "ar_AA", "ja_JP",
)  # fmt: skip
_ATTRIBUTES = ("first_names", "first_names_male", "first_names_female", "first_names_romanized")


def main() -> int:
    """Write the list."""
    names: set[str] = set()
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attribute in _ATTRIBUTES:
            for name in getattr(provider, attribute, ()) or ():
                if name.isalpha() and name[0].isupper() and 2 < len(name) < 14:  # noqa: PLR2004
                    names.add(name)
    header = f"# Given names from Faker {faker.VERSION} (MIT licence), locales {', '.join(LOCALES)}\n"
    OUT.write_text(header + "".join(f"{name}\n" for name in sorted(names)))
    print(f"wrote {len(names)} names to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
