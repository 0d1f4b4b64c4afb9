#!/bin/sh
# Test certificates for test_tls, made fresh in directory $1 with the
# openssl command (nothing long-lived is committed): a CA, a server
# certificate for localhost, 127.0.0.1 and ::1, a client certificate, an
# expired server certificate, one for another host, and a second CA that
# signed nothing the tests trust.
set -eu
dir=$1
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=libasync test CA" -days 2 -out ca.pem 2>/dev/null
key other-ca.key
openssl req -x509 -new -key other-ca.key -subj "/CN=another CA" -days 2 -out other-ca.pem 2>/dev/null

# sign NAME SAN [START END]: NAME.key and NAME.pem signed by the CA.
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
CNF
: > index.txt
echo 01 > serial
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$2" > "$1.ext"
  if [ $# -gt 2 ]; then
    dates="-startdate $3 -enddate $4"
  else
    dates="-days 2"
  fi
  # shellcheck disable=SC2086
  openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key $dates -extfile "$1.ext" -notext \
    -in "$1.csr" -out "$1.pem" 2>/dev/null
}
sign server "DNS:localhost,IP:127.0.0.1,IP:::1"
sign client "DNS:client.test"
sign expired "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20200102000000Z
sign wronghost "DNS:wrong.example"
