"""Pattern detectors: emails, phones, cards, SSNs, IBANs, IPs and secrets, with checksums and placeholders."""

import pytest

from shared.guards.detectors import (
    detect_credit_cards,
    detect_ibans,
    detect_ips,
    detect_pii,
    detect_secrets,
    detect_ssns,
    iban_valid,
    is_placeholder,
    luhn_valid,
    redact,
)

ALL_PII = frozenset({"email", "phone", "credit_card", "us_ssn", "iban", "ip_address"})


def found(text: str, kinds: frozenset[str] = ALL_PII) -> list[tuple[str, str]]:
    return [(d.kind, text[d.start : d.end]) for d in detect_pii(text, kinds)]


class TestDetectors:
    def test_luhn(self) -> None:
        """Known test card numbers pass, a changed digit fails."""
        assert luhn_valid("4111111111111111")
        assert luhn_valid("5500005555555559")
        assert not luhn_valid("4111111111111112")

    def test_finds_email_phone_and_card(self) -> None:
        """Each kind is found with its exact span."""
        text = "Mail a.b+c@example.co.uk, call +44 20 7946 0958, card 4111-1111-1111-1111."
        assert found(text, frozenset({"email", "phone", "credit_card"})) == [
            ("email", "a.b+c@example.co.uk"),
            ("phone", "+44 20 7946 0958"),
            ("credit_card", "4111-1111-1111-1111"),
        ]

    def test_numbers_that_are_not_pii(self) -> None:
        """Years, prices, order numbers, ISBNs, dates, versions and non-Luhn digit runs are left alone."""
        text = (
            "In 2024 it cost 1,299.00 EUR; order 1234567890123 shipped; call ext. 4421. ISBN 978-3-16-148410-0, "
            "due 2024-03-15 at 12:30:45, version 10.0.19041.1, card 4111 1111 1111 1112, ORD-2022-684642."
        )
        assert found(text) == []

    def test_redact_replaces_spans(self) -> None:
        """Placeholders name the kind."""
        text = "write to x@y.org now"
        assert redact(text, detect_pii(text)) == "write to <EMAIL> now"


class TestStructuredPII:
    def test_ssn_issued_ranges_only(self) -> None:
        """A well-formed SSN is found; area 000, 666 and 9xx are never issued."""
        assert [d.kind for d in detect_ssns("ssn 123-45-6789")] == ["us_ssn"]
        assert detect_ssns("ids 000-12-3456, 666-12-3456, 912-12-3456, 123-00-4567") == []

    def test_iban_checksum(self) -> None:
        """IBANs pass mod 97, compact or grouped; one changed digit fails."""
        assert iban_valid("GB82WEST12345698765432")
        assert iban_valid("DE89 3704 0044 0532 0130 00")
        assert not iban_valid("GB82WEST12345698765433")
        text = "pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765433"
        assert [text[d.start : d.end] for d in detect_ibans(text)] == ["DE89 3704 0044 0532 0130 00"]

    def test_iban_wins_over_card_digits_inside_it(self) -> None:
        """A digit run inside an IBAN that happens to pass Luhn is not a card."""
        assert found("account GB94AKVK65335210808582 please") == [("iban", "GB94AKVK65335210808582")]

    def test_ip_addresses(self) -> None:
        """IPv4 and IPv6 are found; out-of-range quads, versions and times are not."""
        text = "hosts 10.0.0.1 and 2001:db8::8a2e:370:7334, not 999.1.1.1, v1.2.3.4 or 12:30:45"
        assert [text[d.start : d.end] for d in detect_ips(text)] == ["10.0.0.1", "2001:db8::8a2e:370:7334"]


class TestSecrets:
    def test_aws_key_pair_both_halves(self) -> None:
        """The AWS key id and the secret access key are both found (the hub validator misses the secret)."""
        text = "aws_access_key_id=AKIAIOSFODNN7EXAMPLE\naws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        assert [(d.kind, text[d.start : d.end]) for d in detect_secrets(text)] == [
            ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
            ("aws_secret_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ]

    def test_aws_secret_without_a_label(self) -> None:
        """A bare 40-character secret key in prose is still found."""
        text = "the secret is wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY ok"
        assert [d.kind for d in detect_secrets(text)] == ["aws_secret_key"]

    def test_token_shapes(self) -> None:
        """GitHub, OpenAI, Slack, Google and Stripe keys, JWTs and PEM private keys."""
        samples = {
            "ghp_1234567890abcdefghijABCDEFGHIJ123456": "api_key",
            "sk-proj-Ub3WGA8HA1QrZEJOriEsIs2rjOy8DK2tsvtyvNgc": "api_key",
            "xoxb-11244035597-253695785687-Ury55rkshM09VP4Vb98IcT8I": "api_key",
            "AIzaSyA1234567890abcdefghijklmnopqrstuv": "api_key",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc": "api_key",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U": "token",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----": "private_key",
        }
        for value, kind in samples.items():
            text = f"use {value} here"
            assert [(d.kind, text[d.start : d.end]) for d in detect_secrets(text)] == [(kind, value)], value

    def test_hashes_and_prose_are_not_secrets(self) -> None:
        """Git SHAs, UUIDs and talk about passwords are not secrets."""
        text = (
            "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12, request 123e4567-e89b-12d3-a456-426614174000; "
            "reset your password in the settings page"
        )
        assert detect_secrets(text) == []

    def test_assigned_password(self) -> None:
        """Only the value of a password assignment is the secret."""
        text = 'db_password = "Tr0ub4dor&3x"'
        assert [(d.kind, text[d.start : d.end]) for d in detect_secrets(text)] == [("password", "Tr0ub4dor&3x")]


def _with_luhn(partial: str) -> str:
    """``partial`` plus the digit that makes it pass Luhn."""
    return next(partial + d for d in "0123456789" if luhn_valid("".join(c for c in partial + d if c.isdigit())))


class TestCards:
    @pytest.mark.parametrize(
        "number",
        [
            _with_luhn("6759 6498 2643 845"),  # Maestro, 16 digits
            _with_luhn("5018 0000 0009 0"),  # Maestro, 14 digits
            _with_luhn("6212 3456 7890 1234 56"),  # UnionPay, 19 digits
            _with_luhn("3782 822463 1000"),  # Amex 4-6-5
            _with_luhn("4000.1234.5678.901"),  # dots
            _with_luhn("220070012345678"),  # Mir, no grouping
        ],
    )
    def test_every_issuer_length_and_grouping(self, number: str) -> None:
        """12-19 digit Luhn-valid numbers of the big networks are found in any grouping."""
        text = f"Please charge {number} today."
        assert [text[d.start : d.end] for d in detect_credit_cards(text)] == [number]

    def test_twelve_digits_need_the_word_card(self) -> None:
        """A 12-digit Maestro number is a card next to "card", and nothing in a list of ids."""
        number = _with_luhn("50181234567")
        assert detect_credit_cards(f"my maestro card {number}")
        assert not detect_credit_cards(f"shipment ids {number}")

    @pytest.mark.parametrize(
        "text",
        [
            "The test number 4111 1111 1111 1112 fails the checksum.",
            "ISBN 978-0-306-40615-7 is the paperback.",
            "Invoice 7777 1234 5678 9012 is overdue.",
        ],
    )
    def test_not_cards(self, text: str) -> None:
        """Luhn failures, ISBN-13s and numbers outside the networks' prefixes are not cards."""
        assert detect_credit_cards(text) == []


class TestPlaceholders:
    @pytest.mark.parametrize(
        "value",
        [
            "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "AKIAXXXXXXXXXXXXXXXX",
            "ghp_************************************",
            "${OPENAI_API_KEY}",
            "$DB_PASSWORD",
            "%SECRET_KEY%",
            "{{ secrets.DEPLOY_TOKEN }}",
            "<your-api-key>",
            "YOUR_API_KEY_HERE",
            "os.environ['STRIPE_KEY']",
        ],
    )
    def test_placeholders(self, value: str) -> None:
        """Filler after a key prefix, variable references and all-caps names stand in for a secret."""
        assert is_placeholder(value)

    @pytest.mark.parametrize("value", ["sk-proj-7fQ2xLmP9aR3tV8wK1nB5cY0", "AKIAIOSFODNN7EXAMPL3", "hunter2hunter2!"])
    def test_real_looking_values_are_not_placeholders(self, value: str) -> None:
        """Keys with real entropy, and a real password, are not placeholders."""
        assert not is_placeholder(value)

    def test_placeholders_are_not_secrets(self) -> None:
        """A config template full of placeholders has no secret in it; a real key next to them is found."""
        template = (
            "OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nAWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX\n"
            'DB_PASSWORD=${DB_PASSWORD}\napi_key = "YOUR_API_KEY_HERE"\n'
        )
        assert detect_secrets(template) == []
        real = template + "GITHUB_TOKEN=ghp_R8sK2mLq9VtX4wZ7yB1nC5dF3gH6jP0aE2uT\n"
        assert [real[d.start : d.end] for d in detect_secrets(real)] == ["ghp_R8sK2mLq9VtX4wZ7yB1nC5dF3gH6jP0aE2uT"]
