#!/usr/bin/env bash
# The distribution's kafka-acls.sh on the Maven-built jars.
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.AclCommand "$@"
