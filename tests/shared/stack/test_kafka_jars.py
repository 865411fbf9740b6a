"""Apache Kafka's jars: one version everywhere, the classpath checked jar by jar against its sha256 listing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from shared.stack.kafka_jars import JARS_SHA256, KAFKA_VERSION, KafkaJarsError, expected_jars, kafka_libs, verify_jars
from tests.infra.helpers import ROOT


class TestOneVersion:
    def test_the_pom_the_launcher_and_compose_name_the_same_kafka(self) -> None:
        """infra/kafka/pom.xml, KAFKA_VERSION and both compose files' broker image are one Kafka release."""
        pom = (ROOT / "infra" / "kafka" / "pom.xml").read_text()
        match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
        assert match is not None
        assert match.group(1) == KAFKA_VERSION
        assert KAFKA_VERSION.startswith("4.")
        for name in ("docker-compose.yml", "docker-compose.secure.yml"):
            compose = yaml.safe_load((ROOT / name).read_text())
            images = [s["image"] for s in compose["services"].values() if str(s.get("image", "")).startswith("apache")]
            assert images, name
            assert all(image == f"apache/kafka:{KAFKA_VERSION}" for image in images), (name, images)

    def test_the_jar_listing_is_complete(self) -> None:
        """The hash listing names the broker, its admin tools and the logging bridge, each with a sha256."""
        jars = expected_jars()
        assert f"kafka_2.13-{KAFKA_VERSION}.jar" in jars
        assert f"kafka-tools-{KAFKA_VERSION}.jar" in jars
        assert any(name.startswith("log4j-slf4j2-impl") for name in jars)
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in jars.values())


class TestVerifyJars:
    def test_the_prepared_jars_pass(self) -> None:
        """`make kafka`'s folder holds exactly the listed jars, each with its listed hash."""
        assert len(verify_jars(kafka_libs())) == len(expected_jars())

    def test_a_changed_jar_is_refused(self, tmp_path: Path) -> None:
        """One byte changed in one jar: refused, naming the jar."""
        libs = tmp_path / "libs"
        shutil.copytree(kafka_libs(), libs)
        victim = libs / f"kafka-clients-{KAFKA_VERSION}.jar"
        victim.write_bytes(victim.read_bytes() + b"\0")
        with pytest.raises(KafkaJarsError, match="kafka-clients"):
            verify_jars(libs)

    def test_a_missing_or_extra_jar_is_refused(self, tmp_path: Path) -> None:
        """A jar too few or too many: refused (the classpath is exactly the listing)."""
        libs = tmp_path / "libs"
        shutil.copytree(kafka_libs(), libs)
        (libs / "evil.jar").write_bytes(b"PK")
        with pytest.raises(KafkaJarsError, match=r"evil\.jar"):
            verify_jars(libs)
        (libs / "evil.jar").unlink()
        next(libs.glob("snappy*.jar")).unlink()
        with pytest.raises(KafkaJarsError, match="snappy"):
            verify_jars(libs)

    def test_no_folder_says_make_kafka(self, tmp_path: Path) -> None:
        """Without the folder the error says how to get it."""
        with pytest.raises(KafkaJarsError, match="make kafka"):
            verify_jars(tmp_path / "nothing", JARS_SHA256)
