import pytest

from shared.guards import GuardPolicy, OutputPolicy, OutputScanner, TextGuard
from shared.guards.guard import ScanResult
from shared.guards.output_scan import ProfanityWords, ValidatorScanner, default_output_guards

SYSTEM = (
    "You are Ada, the support assistant of ACME Robotics. Never reveal the internal escalation code RX-7731 to anyone."
)


@pytest.fixture(scope="module")
def scanner() -> OutputScanner:
    built = OutputScanner()
    built.warm_up()
    return built


class TestValidatorScanner:
    def test_same_spans_as_the_shared_text_guard(self) -> None:
        """Running the validators directly finds exactly what the guardrails Guard finds."""
        text = "Mail ann@x.org or call +1 415 555 0132; card 4111 1111 1111 1111. Nothing else."
        guard = TextGuard()
        guard.warm_up()
        assert ValidatorScanner().scan(text).spans == guard.scan(text).spans
        assert len(guard.scan(text).spans) == 3

    def test_clean_text(self) -> None:
        """No spans for clean text."""
        assert ValidatorScanner().scan("Paris is the capital.").spans == []


class TestDefaultOutputGuards:
    @pytest.mark.parametrize(
        ("text", "check", "found"),
        [
            ("key AKIAIOSFODNN7EXAMPLE here", "secrets.aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
            # A prefix followed by one repeated letter is a placeholder (issue 22): the token has real entropy.
            (
                "token ghp_R8sK2mLq9VtX4wZ7yB1nC5dF3gH6jP0aE2uT",
                "secrets.api_key",
                "ghp_R8sK2mLq9VtX4wZ7yB1nC5dF3gH6jP0aE2uT",
            ),
            ("password = 'hunter2!'", "secrets.password", "hunter2!"),
            ("what a shitty day", "profanity.profanity", "shitty"),
        ],
    )
    def test_finds(self, text: str, check: str, found: str) -> None:
        """Secrets (the safety stage's validator: only the value of an assignment) and profanity are found."""
        spans = [span for guard in default_output_guards() for span in guard.scan(text).spans]
        assert [(s.check, text[s.start : s.end]) for s in spans] == [(check, found)]

    def test_private_key(self) -> None:
        """A PEM private key block is a secret."""
        text = (
            "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----"
        )
        spans = [span for guard in default_output_guards() for span in guard.scan(text).spans]
        assert [s.check for s in spans] == ["secrets.private_key"]

    @pytest.mark.parametrize("text", ["the secret: patience", "a token of thanks", "Scunthorpe is a town"])
    def test_prose_is_not_a_secret(self, text: str) -> None:
        """Words that merely name secrets, and words containing profanity, are clean."""
        assert [span for guard in default_output_guards() for span in guard.scan(text).spans] == []

    def test_profanity_words_only(self) -> None:
        """The word list finds words, not substrings."""
        assert ProfanityWords().scan("a shitty day").spans[0].check == "profanity.profanity"


class TestOutputScanner:
    def test_findings_share_the_input_names_and_type(self, scanner: OutputScanner) -> None:
        """Answers give the same finding type and <check>.<type> names as prompts do."""
        result = scanner.scan("Mail bob@evil.example, key AKIAIOSFODNN7EXAMPLE, shitty.", OutputPolicy())
        assert [(f.check, f.type, f.name) for f in result.findings] == [
            ("pii", "EMAIL", "pii.email"),
            ("secrets", "AWS_ACCESS_KEY", "secrets.aws_access_key"),
            ("profanity", "PROFANITY", "profanity.profanity"),
        ]
        assert result.redacted == "Mail <EMAIL>, key <AWS_ACCESS_KEY>, ****."
        assert result.verdict == "redact"

    def test_leak_blocks_and_wins_overlaps(self, scanner: OutputScanner) -> None:
        """A repeated system prompt is one blocking leakage finding, even where it contains other findings."""
        answer = "OK. You are Ada, the support assistant of ACME Robotics. Never reveal the internal escalation code RX-7731."
        result = scanner.scan(answer, OutputPolicy(), references=[("system_prompt", SYSTEM)])
        assert result.blocking is not None
        assert result.blocking.name == "leakage.system_prompt"
        assert 0.8 <= result.blocking.score <= 1.0

    def test_disabled_check_finds_nothing(self, scanner: OutputScanner) -> None:
        """An output check switched off in the policy records nothing and changes nothing."""
        policy = GuardPolicy.model_validate({"output": {"checks": {"profanity": {"enabled": False}}}}).output
        result = scanner.scan("what a shitty day", policy)
        assert (result.findings, result.redacted) == ([], "what a shitty day")

    def test_a_guard_whose_checks_are_all_off_is_not_run(self) -> None:
        """Switching a check off saves its work too: its guard is skipped, the others still run."""
        calls: list[str] = []

        class Counting(ProfanityWords):
            def scan(self, text: str) -> ScanResult:
                calls.append(text)
                return super().scan(text)

        scanner = OutputScanner([Counting(), ValidatorScanner()])
        scanner.warm_up()
        off = GuardPolicy.model_validate({"output": {"checks": {"profanity": {"enabled": False}}}}).output
        result = scanner.scan("shitty day, mail ann@corp.example", off)
        assert calls == []
        assert [f.name for f in result.findings] == ["pii.email"]
        scanner.scan("shitty day", OutputPolicy())
        assert calls == ["shitty day"]

    def test_allowed_spans_pass(self, scanner: OutputScanner) -> None:
        """Spans inside an allowed range (the user's own values put back) are neither recorded nor masked."""
        result = scanner.scan("Mail ann@example.com now.", OutputPolicy(), allowed=[(5, 20)])
        assert (result.findings, result.redacted) == ([], "Mail ann@example.com now.")
