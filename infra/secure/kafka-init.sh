#!/usr/bin/env bash
# The secure compose profile's one-shot `kafka-users` job (apache/kafka image, in the broker's network namespace):
# creates every principal of kafka-acls.txt with SCRAM-SHA-512 credentials from its password file, then adds the
# ACLs, through the broker's ADMIN listener on 127.0.0.1 (reachable only from inside the broker's namespace).
# Idempotent: credentials are replaced and existing ACLs stay, so it runs again on every `up`.
set -euo pipefail

bootstrap=${KAFKA_ADMIN_BOOTSTRAP:-127.0.0.1:9091}
acls=${KAFKA_ACLS_FILE:-/opt/llmops/kafka-acls.txt}
passwords=${KAFKA_USER_PASSWORDS:-/run/secrets/kafka-users}
bin=${KAFKA_BIN:-/opt/kafka/bin}

entries() { grep -v '^[[:space:]]*#' "$acls" | awk 'NF'; }

for user in $(entries | awk '{print $1}' | sort -u); do
  file=$passwords/$user
  if [[ ! -s $file ]]; then
    echo "kafka-init: no password for $user at $file (run infra/secure/gen-certs.sh)" >&2
    exit 1
  fi
  password=$(<"$file")
  # The broker salts and hashes it; the password is never printed.
  "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --alter --entity-type users --entity-name "$user" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]" >/dev/null
  echo "kafka-init: SCRAM-SHA-512 credentials for $user"
done

# One kafka-acls.sh run per (principal, operation, pattern) with all of its resources (each run starts a JVM).
entries | awk '{
    key = $1 " " $2 " " $3
    resources[key] = resources[key] ($4 == "cluster" ? " --cluster" : " --" $4 " " $5)
  } END { for (key in resources) print key resources[key] }' |
  while read -r user operation pattern resources; do
    # shellcheck disable=SC2086 # resources is a list of options
    "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --add --allow-principal "User:$user" \
      --operation "$operation" --resource-pattern-type "$pattern" $resources >/dev/null
    echo "kafka-init: $user may $operation ($pattern)$resources"
  done
