"""Street addresses, NER span clean-up, listed and cued names."""

import pytest

from shared.guards.pii_entities import (
    clean_entity_span,
    cued_names,
    cued_places,
    detect_addresses,
    first_names,
    listed_names,
)


def values(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The substrings at ``spans``."""
    return [text[s:e] for s, e in spans]


class TestDetectAddresses:
    @pytest.mark.parametrize(
        ("text", "address"),
        [
            (
                "Send it to 58 Willow Crescent, Apt 3C, Portland, OR 97205 please.",
                "58 Willow Crescent, Apt 3C, Portland, OR 97205",
            ),
            ("Lieferadresse: Gartenweg 9, 50667 Köln", "Gartenweg 9, 50667 Köln"),
            ("Adresse : 4 rue des Lilas, 31000 Toulouse", "4 rue des Lilas, 31000 Toulouse"),
            ("La oficina está en Calle Mayor 12, 28013 Madrid.", "Calle Mayor 12, 28013 Madrid"),
            ("Studio in Via Garibaldi 8, 10122 Torino", "Via Garibaldi 8, 10122 Torino"),
            ("bezoekadres Prinsengracht 263, 1016 GV Amsterdam", "Prinsengracht 263, 1016 GV Amsterdam"),
        ],
    )
    def test_one_line_addresses(self, text: str, address: str) -> None:
        """Street, number, unit, postcode and city in several countries' orders are one span."""
        assert values(text, detect_addresses(text)) == [address]

    def test_address_on_several_lines(self) -> None:
        """Street, city, postcode and country on their own lines are one span, and the next field is not in it."""
        text = "Ship to:\nFlat 4, 19 Marlowe Road\nBristol\nBS6 5AX\nUnited Kingdom\nPhone: 0117 496 0000"
        assert values(text, detect_addresses(text)) == ["19 Marlowe Road\nBristol\nBS6 5AX\nUnited Kingdom"]

    def test_lower_case_address(self) -> None:
        """An address typed in lower case is found."""
        text = "deliver to 310 orchard lane, springdale, ar 72764 thanks"
        assert values(text, detect_addresses(text)) == ["310 orchard lane, springdale, ar 72764"]

    def test_numbers_before_street_words_in_prose(self) -> None:
        """A quantity followed by "square" or "park" in a sentence is not an address."""
        text = "Rents rose to 2,150 per square metre and 40 park benches were replaced."
        assert detect_addresses(text) == []


class TestCleanEntitySpan:
    def test_span_is_cut_at_the_line_break(self) -> None:
        """A name span never swallows the first word of the next line."""
        text = "Regards,\nHelena Brandt\nProcurement"
        start = text.index("Helena")
        assert values(text, [clean_entity_span(text, start, len(text)) or (0, 0)]) == ["Helena Brandt"]

    @pytest.mark.parametrize("label", ["EXPERIENCE", "Education", "Skills", "Name:", "References"])
    def test_headings_and_labels_are_not_entities(self, label: str) -> None:
        """CV section headings and form labels are dropped."""
        text = f"{label}\nsomething"
        assert clean_entity_span(text, 0, len(label)) is None

    def test_word_before_a_colon_is_a_label(self) -> None:
        """A single word followed by a colon labels a field."""
        text = "Reporter: front desk"
        assert clean_entity_span(text, 0, 8) is None


class TestNames:
    def test_listed_given_name_and_surname(self) -> None:
        """A listed given name followed by capitalised words (with particles) is a name."""
        text = "Forward it to Giulia Moretti and Pieter van den Berg today."
        assert values(text, listed_names(text)) == ["Giulia Moretti", "Pieter van den Berg"]

    def test_street_after_a_given_name_is_not_a_person(self) -> None:
        """ "Grace Street" is a place, not a person."""
        assert listed_names("Meet me on Grace Street.") == []

    def test_list_has_names_of_many_locales(self) -> None:
        """The shipped list covers English, German, Turkish and Polish given names."""
        assert {"Olivia", "Jürgen", "Elif", "Katarzyna"} <= first_names()

    def test_lower_case_names_after_cues(self) -> None:
        """Lower-case names with a middle initial after "my name is" are candidates; "i'm sorry" is not."""
        text = "hi, my name is nora k. lindgren and i'm sorry for the delay"
        assert values(text, cued_names(text)) == ["nora k. lindgren"]

    def test_lower_case_places_after_cues(self) -> None:
        """A lower-case city after "moved to" is a candidate."""
        text = "we just moved to valencia last spring"
        assert values(text, cued_places(text)) == ["valencia"]
