"""LLMOPS_QDRANT_*: the API key from a file, TLS to the server, and what qdrant-client is given."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import certifi
import pytest
from pydantic import SecretStr
from qdrant_client import QdrantClient

from services.grounding.settings import GroundingSettings
from services.grounding.stage import open_store
from shared.knowledge.settings import KnowledgeSettings
from tests.infra.helpers import settings_env

CA = Path(certifi.where())


class TestKnowledgeSettings:
    def test_api_key_from_a_file(self, tmp_path: Path) -> None:
        """LLMOPS_QDRANT_API_KEY_FILE is read at start (one trailing newline dropped), never shown in a repr."""
        key = tmp_path / "qdrant-key"
        key.write_text("s3cr3t-qdrant-key\n")
        with settings_env({"LLMOPS_QDRANT_URL": "https://qdrant:6333", "LLMOPS_QDRANT_API_KEY_FILE": str(key)}):
            settings = KnowledgeSettings()
        assert settings.api_key == SecretStr("s3cr3t-qdrant-key")
        assert "s3cr3t" not in repr(settings)
        # Nested in the grounding settings (validated again with the key already read): still one key.
        with settings_env({"LLMOPS_QDRANT_URL": "https://qdrant:6333", "LLMOPS_QDRANT_API_KEY_FILE": str(key)}):
            assert GroundingSettings().knowledge.api_key == SecretStr("s3cr3t-qdrant-key")

    def test_key_inline_and_from_a_file_is_refused(self, tmp_path: Path) -> None:
        """Two different keys are a mistake, not a choice."""
        key = tmp_path / "qdrant-key"
        key.write_text("one")
        with pytest.raises(ValueError, match="not both"):
            KnowledgeSettings(url="https://qdrant:6333", api_key=SecretStr("two"), api_key_file=key)

    def test_unreadable_key_file_is_a_clear_error(self, tmp_path: Path) -> None:
        """A missing secret file stops the process at start, naming the file."""
        with pytest.raises(ValueError, match=r"api_key_file .*missing"):
            KnowledgeSettings(url="https://qdrant:6333", api_key_file=tmp_path / "missing")

    def test_settings_that_would_be_unused_are_refused(self) -> None:
        """A CA file needs an https URL; a key or CA without a server (local mode) is refused too."""
        with pytest.raises(ValueError, match="https"):
            KnowledgeSettings(url="http://qdrant:6333", ca_file=CA)
        with pytest.raises(ValueError, match="set url too"):
            KnowledgeSettings(api_key=SecretStr("k"))

    def test_unreadable_ca_file_is_a_clear_error(self, tmp_path: Path) -> None:
        """A CA file that is not a PEM bundle fails when the store is built, naming the setting."""
        bad = tmp_path / "ca.crt"
        bad.write_text("not a certificate")
        with pytest.raises(ValueError, match="LLMOPS_QDRANT_CA_FILE"):
            KnowledgeSettings(url="https://qdrant:6333", ca_file=bad).store(tmp_path)


class TestClientMapping:
    def test_server_over_tls_with_key_and_ca(self, tmp_path: Path) -> None:
        """https URL, key and CA reach QdrantClient: TLS on, the key sent, the server checked against the CA."""
        settings = KnowledgeSettings(url="https://qdrant:6333", api_key=SecretStr("s3cr3t"), ca_file=CA)
        store = open_store(GroundingSettings(knowledge=settings))
        kwargs = store.server_kwargs()
        assert kwargs["url"] == "https://qdrant:6333"
        assert kwargs["api_key"] == "s3cr3t"
        assert kwargs["timeout"] == 2
        verify = kwargs["verify"]
        assert isinstance(verify, ssl.SSLContext)
        assert verify.verify_mode == ssl.CERT_REQUIRED
        assert verify.check_hostname
        assert verify.get_ca_certs()  # the bundle's certificates, not the system's default paths
        client = QdrantClient(**kwargs)  # built, not connected
        remote: Any = client._client  # what the transport was really given
        assert remote._https
        assert remote.rest_uri.startswith("https://qdrant:6333")
        assert remote._rest_args["verify"] is verify
        assert remote._rest_headers["api-key"] == "s3cr3t"
        client.close()

    def test_plain_server_without_tls_settings(self) -> None:
        """An http URL without CA: no verify argument (qdrant-client's defaults), no key."""
        kwargs = KnowledgeSettings(url="http://qdrant:6333").store(Path()).server_kwargs()
        assert kwargs == {"url": "http://qdrant:6333", "api_key": None, "timeout": 2, "check_compatibility": False}

    def test_local_mode_is_a_folder(self, tmp_path: Path) -> None:
        """No URL: the local folder, nothing to connect to."""
        store = KnowledgeSettings(path=tmp_path / "q").store(tmp_path)
        assert store.local
        assert store.path == tmp_path / "q"
