from services.inference.text_stream import StopScanner


class TestStopScanner:
    def test_holds_back_a_possible_stop(self) -> None:
        """Text that may start a stop sequence waits; the stop itself is never returned."""
        scan = StopScanner(["\nUser:"])
        assert scan.feed(b"Paris.\nUs") == ("Paris.", False)
        assert scan.feed(b"er: hi") == ("", True)
        assert scan.text == "Paris."

    def test_releases_held_text_that_is_not_a_stop(self) -> None:
        """Held text comes out once it cannot be a stop any more, and at the end."""
        scan = StopScanner(["\nUser:"])
        assert scan.feed(b"a\nU") == ("a", False)
        assert scan.feed(b"nder") == ("\nUnder", False)
        assert scan.feed(b"\n") == ("", False)
        assert scan.finish() == "\n"
        assert scan.text == "a\nUnder\n"

    def test_multibyte_characters_split_across_tokens(self) -> None:
        """A UTF-8 character split over two tokens comes out whole."""
        data = "café".encode()
        scan = StopScanner([])
        assert scan.feed(data[:-1]) == ("caf", False)
        assert scan.feed(data[-1:]) == ("é", False)
