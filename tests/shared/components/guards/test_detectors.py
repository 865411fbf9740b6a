from shared.components.guards.detectors import detect_pii, luhn_valid, redact


class TestDetectors:
    def test_luhn(self) -> None:
        """Known test card numbers pass, a changed digit fails."""
        assert luhn_valid("4111111111111111")
        assert luhn_valid("5500005555555559")
        assert not luhn_valid("4111111111111112")

    def test_finds_email_phone_and_card(self) -> None:
        """Each kind is found with its exact span."""
        text = "Mail a.b+c@example.co.uk, call +44 20 7946 0958, card 4111-1111-1111-1111."
        found = detect_pii(text)
        assert [(d.kind, text[d.start : d.end]) for d in found] == [
            ("email", "a.b+c@example.co.uk"),
            ("phone", "+44 20 7946 0958"),
            ("credit_card", "4111-1111-1111-1111"),
        ]

    def test_numbers_that_are_not_pii(self) -> None:
        """Years, prices, short numbers and non-Luhn digit runs are left alone."""
        text = "In 2024 it cost 1,299.00 EUR; order 1234567890123 shipped; call ext. 4421."
        assert detect_pii(text) == []

    def test_redact_replaces_spans(self) -> None:
        """Placeholders name the kind."""
        text = "write to x@y.org now"
        assert redact(text, detect_pii(text)) == "write to <EMAIL> now"
