import pytest
from pydantic import ValidationError

from services.inference.params import InvalidParamsError, resolve_params, seed_for
from shared.contracts.envelope import SamplingParams
from shared.models.registry import ModelEntry, ModelRegistry, SamplingDefaults


@pytest.fixture
def gemma(registry: ModelRegistry) -> ModelEntry:
    return registry.get("gemma-3-270m")


class TestResolveParams:
    def test_request_values_win_over_model_defaults(self, gemma: ModelEntry) -> None:
        """Set values are kept; unset ones come from the registry entry, then llama.cpp's defaults."""
        entry = gemma.model_copy(update={"sampling": SamplingDefaults(top_k=7, repeat_penalty=1.1, stop=["###"])})
        p = resolve_params(SamplingParams(top_k=3, stop=["END"], seed=5), entry, n_ctx=2048)
        assert (p.top_k, p.repeat_penalty, p.min_p, p.seed) == (3, 1.1, 0.05, 5)
        assert p.stop == ("END", "###")
        assert resolve_params(SamplingParams(), entry, n_ctx=2048).top_k == 7

    def test_every_problem_is_reported(self, gemma: ModelEntry) -> None:
        """Unusable values are refused together, each named."""
        bad = SamplingParams(max_tokens=4096, stop=[""], seed=-1)
        with pytest.raises(InvalidParamsError) as err:
            resolve_params(bad, gemma, n_ctx=2048)
        message = str(err.value)
        assert "max_tokens=4096" in message
        assert "stop sequences must not be empty" in message
        assert "seed" in message

    def test_json_schema_becomes_a_grammar(self, gemma: ModelEntry) -> None:
        """A usable schema gives a grammar; an unsupported one is a clear error."""
        ok = SamplingParams(json_schema={"type": "object", "properties": {"a": {"type": "integer"}}})
        assert resolve_params(ok, gemma, n_ctx=2048).grammar is not None
        with pytest.raises(InvalidParamsError, match="json_schema"):
            resolve_params(SamplingParams(json_schema={"type": "nonsense"}), gemma, n_ctx=2048)

    def test_out_of_range_values_fail_in_the_envelope(self) -> None:
        """Ranges are checked where the request is built (client and intake), before any stage."""
        for field, value in [("temperature", 3.0), ("top_k", -1), ("min_p", 1.5), ("repeat_penalty", 0.0)]:
            with pytest.raises(ValidationError, match=field):
                SamplingParams.model_validate({field: value})


class TestSeedFromRequestId:
    def test_request_id_decides_the_seed_when_the_client_gives_none(self, registry: ModelRegistry) -> None:
        """Redelivered requests sample identically: the seed is derived from the request id."""
        entry = registry.get("gemma-3-270m")
        first = resolve_params(SamplingParams(), entry, n_ctx=2048, request_id="abc")
        again = resolve_params(SamplingParams(), entry, n_ctx=2048, request_id="abc")
        other = resolve_params(SamplingParams(), entry, n_ctx=2048, request_id="abd")
        assert first.seed == again.seed == seed_for("abc")
        assert other.seed != first.seed
        assert resolve_params(SamplingParams(seed=7), entry, n_ctx=2048, request_id="abc").seed == 7
