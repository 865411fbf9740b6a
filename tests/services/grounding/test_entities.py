from services.grounding.entities import EntityExtractor


class TestEntityExtractor:
    def test_people_places_dates(self, extractor: EntityExtractor) -> None:
        """Names, places and dates are found with their character spans."""
        text = "Did Ada Lovelace visit Paris in 1840?"
        entities = extractor.extract(text)
        labels = {(e.text, e.label) for e in entities}
        assert ("Ada Lovelace", "PERSON") in labels
        assert ("Paris", "GPE") in labels
        assert all(text[e.start : e.end] == e.text for e in entities)

    def test_numbers_are_not_entities(self, extractor: EntityExtractor) -> None:
        """Plain quantities are not recorded."""
        assert extractor.extract("What is 2 plus 2?") == []
