"""`make kafka`: Apache Kafka's broker jars from Maven Central into the cache folder, each checked by sha256.

Maven (infra/kafka/pom.xml) copies the broker and its runtime dependencies into a staging folder, with strict
checksums (``-C``: Central's own SHA-1 must match); every jar must then have the sha256 that
infra/kafka/jars.sha256 lists, and no jar may be missing or extra. Only then does the folder replace
``~/.cache/llmops/kafka/<version>/libs`` (shared/stack/kafka.py starts the broker from there). Already in
place and intact: nothing is downloaded.

    python scripts/kafka_jars.py            # prepare (what `make kafka` runs)
    python scripts/kafka_jars.py --update   # after changing the pom: rewrite jars.sha256 from what Maven fetched
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from shared.stack.kafka_jars import JARS_SHA256, KAFKA_VERSION, KafkaJarsError, kafka_libs, verify_jars

ROOT = Path(__file__).resolve().parents[1]
POM = ROOT / "infra" / "kafka" / "pom.xml"


def maven_copy(into: Path) -> None:
    """Run the pom's copy-dependencies into ``into`` (strict checksums, batch mode, quiet)."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SystemExit("mvn is not on the PATH: install Maven (and a JDK 17+) to prepare Apache Kafka")
    cmd = [mvn, "-q", "-B", "-C", "-Dstyle.color=never", "-f", str(POM), "package", f"-Dllmops.kafka.libs={into}"]
    subprocess.run(cmd, check=True)  # noqa: S603 - fixed argv


def write_listing(libs: Path) -> None:
    """jars.sha256 from the jars in ``libs`` (sorted by name, sha256sum's format)."""
    lines = [
        f"# sha256 of every jar `make kafka` puts on the broker's classpath (Apache Kafka {KAFKA_VERSION}).",
        "# scripts/kafka_jars.py checks them; `scripts/kafka_jars.py --update` rewrites this after a pom change.",
    ]
    lines += [f"{hashlib.sha256(jar.read_bytes()).hexdigest()}  {jar.name}" for jar in sorted(libs.glob("*.jar"))]
    JARS_SHA256.write_text("\n".join(lines) + "\n")


def main() -> None:
    """Prepare (or, with ``--update``, re-list) the broker's jars."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite infra/kafka/jars.sha256 from Maven's jars")
    args = parser.parse_args()
    libs = kafka_libs()
    if not args.update:
        try:
            jars = verify_jars(libs)
        except KafkaJarsError:
            pass
        else:
            print(f"Apache Kafka {KAFKA_VERSION}: {len(jars)} jars in {libs}, sha256 checked")
            return
    libs.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kafka-libs-", dir=libs.parent) as tmp:
        staging = Path(tmp) / "libs"
        maven_copy(staging)
        if args.update:
            write_listing(staging)
        jars = verify_jars(staging)
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    print(f"Apache Kafka {KAFKA_VERSION}: {len(jars)} jars from Maven Central in {libs}, sha256 checked")


if __name__ == "__main__":
    main()
