"""Phone numbers in national and international formats (issue 22's missed shapes), and what is not a phone."""

import pytest

from shared.guards.detectors import detect_phones
from shared.guards.phones import detect_phone_spans


def found(text: str) -> list[str]:
    """The phone values ``detect_phones`` finds."""
    return [text[d.start : d.end] for d in detect_phones(text)]


class TestDetectPhones:
    @pytest.mark.parametrize(
        ("text", "phone"),
        [
            ("Büro Zürich: +41 (0)44 512 33 90, Mo-Fr.", "+41 (0)44 512 33 90"),
            ("Ruf mich an unter 0171 98 76 54 32.", "0171 98 76 54 32"),
            ("Mon portable : 06.45.23.81.90", "06.45.23.81.90"),
            ("Ring the Oslo desk on 41-52-63-74 after lunch.", "41-52-63-74"),
            ("UK mobile +447911654321 works on WhatsApp.", "+447911654321"),
            ("In Singapore call 8123 4567 for the concierge.", "8123 4567"),
            ("Our Madrid office: +34 915 23 45 67.", "+34 915 23 45 67"),
            ("The clinic's number is (212) 555-0147.", "(212) 555-0147"),
            ("Llámame al 0034 622 11 22 33 mañana.", "0034 622 11 22 33"),
        ],
    )
    def test_formats_from_several_countries(self, text: str, phone: str) -> None:
        """International, European and short formats are found as one span each."""
        assert found(text) == [phone]

    @pytest.mark.parametrize(
        "text",
        [
            "We moved from 2019-2023 budgets to rolling forecasts.",
            "The ISBN 0-306-40615-2 is on the back cover.",
            "Upgrade to release 4.18.2.11 before Friday.",
            "The ISSN is 2049-3630 for the online edition.",
            "A ticket costs 12.50 and a season pass 240.00.",
            "This week's lottery numbers were 03 17 22 38 44.",
            "Order 2025-447-10293 is waiting for payment.",
        ],
    )
    def test_numbers_that_are_not_phones(self, text: str) -> None:
        """Year ranges, ISBNs, versions, ISSNs, prices, lottery draws and order numbers are left alone."""
        assert found(text) == []

    def test_short_numbers_need_a_phone_word(self) -> None:
        """Eight digits in pairs are a phone after "call", nothing on their own."""
        assert detect_phone_spans("call 22 44 66 88") == [(5, 16)]
        assert detect_phone_spans("batch 22 44 66 88") == []

    def test_no_span_crosses_a_line(self) -> None:
        """A number at the end of one line and one at the start of the next stay apart."""
        text = "fax 01 42 68 53 01\n12 boulevard Haussmann"
        assert found(text) == ["01 42 68 53 01"]
