"""Apache Kafka's jars from Maven: the one release the project runs, where its jars live, and their check.

``make kafka`` (``scripts/kafka_jars.py``) copies the broker's jars from Maven Central into
:func:`kafka_libs`; :func:`verify_jars` refuses a classpath that is not exactly the jars
``infra/kafka/jars.sha256`` lists, with their sha256. ``shared.stack.kafka`` starts brokers from them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from shared.runtime.settings import default_data_dir

__all__ = [
    "JARS_SHA256",
    "KAFKA_VERSION",
    "KafkaJarsError",
    "expected_jars",
    "java_binary",
    "kafka_libs",
    "verify_jars",
]

#: The Kafka release of infra/kafka/pom.xml and docker-compose.yml's image (a test keeps the three equal).
KAFKA_VERSION = "4.1.1"
_REPO = Path(__file__).resolve().parents[2]
JARS_SHA256 = _REPO / "infra" / "kafka" / "jars.sha256"


class KafkaJarsError(RuntimeError):
    """The broker's jars are missing or not the ones ``infra/kafka/jars.sha256`` lists."""


def kafka_libs(data_dir: Path | None = None) -> Path:
    """Where ``make kafka`` puts the broker's jars: ``<data dir>/kafka/<version>/libs``."""
    override = os.environ.get("LLMOPS_KAFKA_LIBS")
    if override:
        return Path(override)
    return (data_dir or default_data_dir()) / "kafka" / KAFKA_VERSION / "libs"


def java_binary() -> str:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` from the PATH (Kafka 4 needs Java 17 or later)."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        msg = "no java on the PATH (Apache Kafka needs Java 17+): install a JDK or set JAVA_HOME"
        raise KafkaJarsError(msg)
    return found


def expected_jars(listing: Path = JARS_SHA256) -> dict[str, str]:
    """``{jar file name: sha256}`` from a ``sha256sum``-style listing (comments allowed)."""
    out: dict[str, str] = {}
    for line in listing.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        digest, name = line.split(maxsplit=1)
        out[name.strip().lstrip("*")] = digest
    return out


def verify_jars(libs: Path, listing: Path = JARS_SHA256) -> list[Path]:
    """The classpath's jars, after checking that they are exactly the listed ones with the listed sha256."""
    if not libs.is_dir():
        msg = f"Apache Kafka's jars are not in {libs}: run `make kafka` (Maven Central, about 45 MB, once)"
        raise KafkaJarsError(msg)
    want = expected_jars(listing)
    have = {p.name: p for p in libs.glob("*.jar")}
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    if missing or extra:
        msg = f"{libs} does not hold the jars of {listing.name}: missing {missing}, unexpected {extra} (make kafka)"
        raise KafkaJarsError(msg)
    for name, digest in want.items():
        actual = hashlib.sha256(have[name].read_bytes()).hexdigest()
        if actual != digest:
            msg = f"{have[name]} has sha256 {actual}, {listing.name} lists {digest}: delete {libs} and run make kafka"
            raise KafkaJarsError(msg)
    return sorted(have.values())
