from pathlib import Path

import pytest

from services.grounding.templates import TemplateStore, UnknownTemplateError


class TestTemplateStore:
    def test_packaged_default(self) -> None:
        """The packaged default template is version 1 with a system prompt."""
        template = TemplateStore.load().get("default")
        assert (template.id, template.version) == ("default", 1)
        assert "assistant" in template.system

    def test_latest_or_pinned_version(self, tmp_path: Path) -> None:
        """A bare id is the newest version; id@N pins one."""
        for version in (1, 2):
            (tmp_path / f"x.v{version}.yaml").write_text(f"id: x\nversion: {version}\nsystem: v{version}\n")
        store = TemplateStore.load(tmp_path)
        assert store.get("x").system == "v2"
        assert store.get("x@1").system == "v1"

    @pytest.mark.parametrize("ref", ["nope", "default@9", "default@x"])
    def test_unknown(self, ref: str) -> None:
        """Unknown ids and versions raise."""
        with pytest.raises(UnknownTemplateError):
            TemplateStore.load().get(ref)
