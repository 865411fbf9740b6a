#!/usr/bin/env bash
# The distribution's kafka-transactions.sh (producers and transactions of a partition) on the Maven-built jars.
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.TransactionsCommand "$@"
