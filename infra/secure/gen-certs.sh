#!/usr/bin/env bash
# Makes everything the secure compose profile (docker-compose.secure.yml) mounts, with openssl only:
#
#   <out>/ca/ca.key                 the CA's private key: stays here, never mounted, never committed
#   <out>/ca.crt                    the CA certificate every client trusts (LLMOPS_KAFKA_SSL_CAFILE)
#   <out>/kafka/kafka.keystore.p12  the broker's key and certificate (CN and SAN kafka, localhost, 127.0.0.1)
#   <out>/kafka/keystore-password   the keystore's password (read by the broker image at start)
#   <out>/passwords/<principal>     one random SCRAM password per principal of kafka-acls.txt
#   <out>/grafana-admin-password    Grafana's admin password
#   <out>/qdrant-api-key            Qdrant's API key (grounding: LLMOPS_QDRANT_API_KEY_FILE)
#   <out>/qdrant/local.yaml         the same key as Qdrant's config (service.api_key), mounted into its container
#
#   infra/secure/gen-certs.sh [out]     # default out: infra/secure/generated (git-ignored)
#
# Existing files are kept, so running it again only adds what is missing; delete <out> to rotate everything
# (then `docker compose ... down -v` too: the broker keeps the old SCRAM credentials until kafka-init runs).
# <out> and <out>/ca are private to you (0700); what a container reads is world-readable (0644) because the
# containers run as their own non-root users (llmops 10001, Kafka 1000, Grafana 472): bind-mounted one file or
# folder at a time, each container sees only its own.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/generated}
days=${CERT_DAYS:-825}

umask 077
mkdir -p "$out/ca" "$out/kafka" "$out/passwords"
chmod 700 "$out" "$out/ca"
chmod 755 "$out/kafka" "$out/passwords"

secret() {  # a random hex password (no character SCRAM or the shell would need escaped), kept if present
  if [[ ! -s $1 ]]; then
    openssl rand -hex 24 >"$1"
  fi
  chmod 644 "$1"
}

if [[ ! -s $out/ca/ca.key || ! -s $out/ca.crt ]]; then
  openssl req -x509 -newkey rsa:4096 -sha256 -nodes -days "$days" -subj "/CN=llmops-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$out/ca/ca.key" -out "$out/ca.crt" 2>/dev/null
fi
chmod 600 "$out/ca/ca.key"
chmod 644 "$out/ca.crt"

secret "$out/kafka/keystore-password"
if [[ ! -s $out/kafka/kafka.keystore.p12 ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  openssl req -new -newkey rsa:2048 -nodes -subj "/CN=kafka" -keyout "$work/kafka.key" -out "$work/kafka.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=DNS:kafka,DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
    "keyUsage=critical,digitalSignature,keyEncipherment" >"$work/ext"
  openssl x509 -req -sha256 -days "$days" -in "$work/kafka.csr" -CA "$out/ca.crt" -CAkey "$out/ca/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$work/ext" -out "$work/kafka.crt" 2>/dev/null
  # The broker's key lives only inside the password-protected keystore.
  openssl pkcs12 -export -name kafka -in "$work/kafka.crt" -inkey "$work/kafka.key" -certfile "$out/ca.crt" \
    -passout "file:$out/kafka/keystore-password" -out "$out/kafka/kafka.keystore.p12"
fi
chmod 644 "$out/kafka/kafka.keystore.p12"

for principal in $(grep -v '^[[:space:]]*#' "$here/kafka-acls.txt" | awk 'NF {print $1}' | sort -u); do
  secret "$out/passwords/$principal"
done
secret "$out/grafana-admin-password"
secret "$out/qdrant-api-key"
mkdir -p "$out/qdrant"
chmod 755 "$out/qdrant"
printf 'service:\n  api_key: "%s"\n' "$(cat "$out/qdrant-api-key")" >"$out/qdrant/local.yaml"
chmod 644 "$out/qdrant/local.yaml"

echo "secure profile files in $out; start it with:"
echo "  GATEWAY_AUTH_FILE=<your auth file> docker compose -f docker-compose.yml -f docker-compose.secure.yml up -d"
