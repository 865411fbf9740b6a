"""The gateway on the real pipeline: the official OpenAI client, and a browser on the playground."""

from pathlib import Path

import httpx
import openai
import pytest
from playwright.async_api import async_playwright

from shared.models.registry import ModelRegistry
from shared.stack.embedded import STAGES
from tests.e2e.conftest import GatewayEndpoint

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
QUESTION = "What is the capital of France? Answer in one word."


def _client(gateway: GatewayEndpoint) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0, timeout=120)


class TestOpenAiClient:
    async def test_non_streaming_answer(self, gateway: GatewayEndpoint, registry: ModelRegistry) -> None:
        """The openai package gets a chat.completion from the real model, with usage and the pipeline's trail."""
        async with _client(gateway) as client:
            models = await client.models.list()
            assert registry.default in {m.id for m in models.data}
            answer = await client.chat.completions.create(
                model=registry.default,
                messages=[{"role": "user", "content": QUESTION}],
                max_tokens=8,
                temperature=0,
            )
        assert answer.object == "chat.completion"
        assert answer.model == registry.default
        choice = answer.choices[0]
        assert choice.message.role == "assistant"
        assert "paris" in (choice.message.content or "").lower()
        assert choice.finish_reason in {"stop", "length"}
        assert answer.usage is not None
        assert 0 < answer.usage.completion_tokens <= 8
        extras = (answer.model_extra or {})["llmops"]
        assert [t["stage"] for t in extras["trail"]] == list(STAGES)
        assert extras["tenant"] == "e2e"

    async def test_streaming_answer(self, gateway: GatewayEndpoint, registry: ModelRegistry) -> None:
        """A streamed answer arrives as chat.completion.chunk deltas that add up to the answer, then a finish reason."""
        async with _client(gateway) as client:
            stream = await client.chat.completions.create(
                model=registry.default,
                messages=[{"role": "user", "content": QUESTION}],
                max_tokens=8,
                temperature=0,
                stream=True,
            )
            chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "paris" in text.lower()
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].choices[0].finish_reason in {"stop", "length"}
        assert {c.object for c in chunks} == {"chat.completion.chunk"}
        assert len({c.id for c in chunks}) == 1

    async def test_stream_ends_with_done_and_blocked_prompts_are_422(
        self, gateway: GatewayEndpoint, registry: ModelRegistry
    ) -> None:
        """The raw SSE stream ends with `data: [DONE]`; a prompt the safety stage blocks is a 422 with its category."""
        headers = {"Authorization": f"Bearer {gateway.key}"}
        body = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "stream": True}
        async with httpx.AsyncClient(base_url=gateway.url, timeout=120) as http:
            resp = await http.post("/v1/chat/completions", json=body, headers=headers)
            assert resp.status_code == 200
            assert resp.text.rstrip().endswith("data: [DONE]")
        async with _client(gateway) as client:
            with pytest.raises(openai.UnprocessableEntityError) as info:
                await client.chat.completions.create(
                    model=registry.default,
                    messages=[{"role": "user", "content": "My card is 4111 1111 1111 1111, is it valid?"}],
                    max_tokens=4,
                )
        error = info.value.body
        assert isinstance(error, dict)
        assert error["code"] == "blocked_by_safety"
        assert error["category"]


class TestPlayground:
    async def test_browser_chat_streams_an_answer_with_its_trail(self, gateway: GatewayEndpoint) -> None:
        """Headless Chromium opens the playground, asks, sees the answer and the trail, then the stats view."""
        ARTIFACTS.mkdir(exist_ok=True)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = await browser.new_page(viewport={"width": 1100, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{gateway.url}/#key={gateway.key}")
            await page.wait_for_function("document.querySelectorAll('#model option').length > 0")
            await page.fill("#max-tokens", "12")
            await page.fill("#prompt", QUESTION)
            await page.click("#send")
            answer = page.locator("[data-testid=answer]").last
            await answer.locator(".text").wait_for()
            await page.wait_for_selector("[data-testid=answer][data-done=true]", timeout=120_000)
            text = await answer.locator(".text").inner_text()
            stages = await answer.locator(".trail .stage").all_inner_texts()
            safety = await answer.locator(".safety").inner_text()
            await page.screenshot(path=str(ARTIFACTS / "playground-chat.png"), full_page=True)
            await page.click("#tab-stats")
            await page.wait_for_function(
                "[...document.querySelectorAll('#stage-table tbody tr')].some(r => r.cells[1].textContent !== '0')"
            )
            await page.screenshot(path=str(ARTIFACTS / "playground-stats.png"), full_page=True)
            await browser.close()
        assert "paris" in text.lower()
        assert stages == list(STAGES)
        assert safety.startswith("Safety: allow")
        assert errors == []
        assert (ARTIFACTS / "playground-chat.png").stat().st_size > 10_000
