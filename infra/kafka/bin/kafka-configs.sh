#!/usr/bin/env bash
# The distribution's kafka-configs.sh (users' SCRAM credentials, topic and broker configs) on the Maven-built jars.
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" kafka.admin.ConfigCommand "$@"
