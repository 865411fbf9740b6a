from shared.components.guards.detectors import (
    detect_ibans,
    detect_ips,
    detect_pii,
    detect_secrets,
    detect_ssns,
    iban_valid,
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
