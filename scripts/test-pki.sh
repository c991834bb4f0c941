#!/usr/bin/env bash
# Test certificates, made fresh for each test run with the openssl CLI (no key is ever committed):
#   ca.pem/key              the serving CA;  server.pem/key   CN=localhost, SAN 127.0.0.1, ::1, localhost
#   server2.pem/key         a second serving certificate (rotation tests); mismatch.key: a key of no certificate
#   proxy-ca.pem/key        the front-proxy (requestheader) CA
#   proxy-client.pem/key    CN=front-proxy-client, clientAuth   proxy-other.pem/key  CN=someone-else
#   client-ca.pem/key       the --client-ca-file CA;  alice.pem/key  CN=alice, O=dev, O=ops
#   expired.pem/key         CN=front-proxy-client from proxy-ca, expired in 2020
#   rogue-ca.pem, rogue.pem/key  CN=front-proxy-client from an unrelated CA
# Usage: scripts/test-pki.sh OUTDIR
set -euo pipefail
out=$1
mkdir -p "$out"
cd "$out"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() {  # name ca subject extensions
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 2 \
    -extfile "$1.ext" 2>/dev/null
}
server_ext='subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth'
client_ext='extendedKeyUsage=clientAuth'

ca ca "/CN=accelmetrics-test-ca"
leaf server ca "/CN=localhost" "$server_ext"
leaf server2 ca "/CN=localhost-rotated" "$server_ext"
key mismatch.key
ca proxy-ca "/CN=front-proxy-ca"
leaf proxy-client proxy-ca "/CN=front-proxy-client" "$client_ext"
leaf proxy-other proxy-ca "/CN=someone-else" "$client_ext"
ca client-ca "/CN=client-ca"
leaf alice client-ca "/O=dev/O=ops/CN=alice" "$client_ext"
ca rogue-ca "/CN=rogue-ca"
leaf rogue rogue-ca "/CN=front-proxy-client" "$client_ext"

# An expired client certificate: `openssl ca` takes explicit dates.
key expired.key
openssl req -new -key expired.key -out expired.csr -subj "/CN=front-proxy-client" 2>/dev/null
mkdir -p ca-db && : > ca-db/index.txt && echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = client
[any]
commonName = supplied
[client]
extendedKeyUsage = clientAuth
CNF
openssl ca -batch -config ca-db/ca.cnf -cert proxy-ca.pem -keyfile proxy-ca.key -in expired.csr -out expired.pem \
  -startdate 20200101000000Z -enddate 20200102000000Z -notext >/dev/null 2>&1
rm -f ./*.csr ./*.ext ./*.srl
