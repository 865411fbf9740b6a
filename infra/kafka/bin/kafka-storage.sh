#!/usr/bin/env bash
# The distribution's kafka-storage.sh (format a KRaft log directory) on the Maven-built jars.
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
