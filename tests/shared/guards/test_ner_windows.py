from shared.guards.ner_windows import NerBudget, blank_long_words


def test_long_words_are_blanked_in_place() -> None:
    """A run of 64+ non-space characters becomes as many spaces; shorter words and offsets are kept."""
    text = "Ann " + "x" * 64 + " Bob " + "y" * 63
    blanked = blank_long_words(text)
    assert len(blanked) == len(text)
    assert blanked == "Ann " + " " * 64 + " Bob " + "y" * 63


def test_take_spends_words_and_refuses_what_does_not_fit() -> None:
    budget = NerBudget(6)
    assert budget.take("Hi, Ann Lee.")  # Hi , Ann Lee .
    assert not budget.take("Bob Stone")
    assert (budget.words, budget.skipped_chars) == (1, 9)
