#!/usr/bin/env bash
# Runs a class of the Maven-built Apache Kafka (`make kafka`), as the distribution's own kafka-run-class.sh does:
#   infra/kafka/bin/kafka-run-class.sh CLASS [ARGS...]
# The jars: $KAFKA_LIBS, else ~/.cache/llmops/kafka/<version>/libs ($LLMOPS_DATA_DIR/kafka/... when set).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/../pom.xml")
libs=${KAFKA_LIBS:-${LLMOPS_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llmops}/kafka/$version/libs}
if [[ ! -d $libs ]]; then
  echo "no Apache Kafka jars in $libs: run make kafka" >&2
  exit 1
fi
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
exec "$java" ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:TieredStopAtLevel=1 -Xshare:auto \
  -Dlog4j2.configurationFile="$here/../tools-log4j2.properties" -cp "$libs/*" "$@"
