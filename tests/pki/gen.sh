#!/usr/bin/env bash
# Test PKI for meshgate: unit and end-to-end tests use it.
#
#   tests/pki/gen.sh OUTDIR
#
# Idempotent: does nothing when OUTDIR/.complete exists and is newer than this
# script (delete OUTDIR to regenerate). All keys EC P-256, SHA-256 signatures.
# Files written in OUTDIR (PEM; every *.key is mode 0600):
#
#   ca.pem, ca.key                 CA of trust domain cluster.local
#   second-ca.pem, second-ca.key   another CA, NOT a root of any configured domain
#   otherdomain-ca.pem, .key       CA of trust domain other.example (second domain)
#   evil-ca.pem, evil-ca.key       CA of evil.example (never configured)
#   gateway.pem, gateway.key       server: DNS localhost, meshgate.test, IP 127.0.0.1,
#                                  IP 198.18.3.2, URI spiffe://cluster.local/ns/meshgate/sa/gateway,
#                                  EKU serverAuth+clientAuth, signed by ca
#   gateway-chain.pem              gateway.pem followed by ca.pem
#   gateway-rsa.pem, .key, gateway-rsa-chain.pem   same with an RSA-2048 key (DNS localhost)
#   bundle.pem                     ca.pem + otherdomain-ca.pem (both roots)
#   Client certificates (NAME.pem, NAME.key), EKU clientAuth unless said:
#   frontend        spiffe://cluster.local/ns/prod/sa/frontend        (ca)
#   other           spiffe://cluster.local/ns/prod/sa/other           (ca)
#   ns-dev          spiffe://cluster.local/ns/dev/sa/tool             (ca)
#   expired         spiffe://cluster.local/ns/prod/sa/frontend, valid 2020-01-01..2021-01-01 (ca)
#   not-yet-valid   spiffe://cluster.local/ns/prod/sa/frontend, valid 2099-01-01..2100-01-01 (ca)
#   no-uri          only DNS SAN frontend.prod.svc                    (ca)
#   server-eku-only spiffe://cluster.local/ns/prod/sa/frontend, EKU serverAuth only (ca)
#   no-eku          spiffe://cluster.local/ns/prod/sa/frontend, no EKU extension (ca)
#   two-uris        spiffe://cluster.local/ns/prod/sa/frontend + spiffe://cluster.local/ns/prod/sa/other (ca)
#   unknown-td      spiffe://evil.example/ns/prod/sa/frontend         (evil-ca)
#   other-ca        spiffe://cluster.local/ns/prod/sa/frontend        (second-ca: untrusted)
#   otherdomain     spiffe://other.example/ns/payments/sa/api         (otherdomain-ca)
#   bad-spiffe      spiffe://cluster.local/ns/prod/sa/../x            (ca, malformed path)
#   http-uri        https://cluster.local/ns/prod/sa/frontend         (ca, URI not spiffe)
set -euo pipefail
out=${1:?usage: gen.sh OUTDIR}
self=$(readlink -f "$0")
if [[ -f $out/.complete && $out/.complete -nt $self ]]; then exit 0; fi
# Built in a private directory and renamed into place, so that tests running
# at the same time never see a half-written PKI.
mkdir -p "$(dirname "$out")"
final=$(readlink -f "$out")
tmp=$(mktemp -d "$final.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
mkdir -p work/new
umask 077
: > work/index.txt
echo 1000 > work/serial

cat > work/ca.cnf <<'CNF'
[ ca ]
default_ca = mg
[ mg ]
dir = work
database = work/index.txt
new_certs_dir = work/new
serial = work/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
[ anything ]
commonName = supplied
organizationName = optional
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF

newkey() { # FILE [rsa]
	if [[ ${2:-} == rsa ]]; then
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
	else
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
	fi
	chmod 600 "$1"
}

mkca() { # name cn
	newkey "$1.key"
	openssl req -new -x509 -key "$1.key" -subj "/O=meshgate test/CN=$2" -days 3650 \
		-config work/ca.cnf -extensions v3_ca -sha256 -out "$1.pem"
}

# leaf NAME ISSUER "SAN" "EKU or empty" [STARTDATE ENDDATE [reuse: key exists]]
leaf() {
	local name=$1 issuer=$2 san=$3 eku=$4 start=${5:-} end=${6:-}
	[[ ${7:-} == reuse ]] || newkey "$name.key"
	openssl req -new -key "$name.key" -subj "/O=meshgate test/CN=$name" -out "work/$name.csr"
	{
		echo "[ ext ]"
		echo "basicConstraints = critical,CA:FALSE"
		echo "keyUsage = critical,digitalSignature,keyEncipherment"
		[[ -n $san ]] && echo "subjectAltName = $san"
		[[ -n $eku ]] && echo "extendedKeyUsage = $eku"
		echo "authorityKeyIdentifier = keyid"
	} > "work/$name.ext"
	local dates=(-days 825)
	[[ -n $start ]] && dates=(-startdate "$start" -enddate "$end")
	openssl ca -batch -notext -config work/ca.cnf -cert "$issuer.pem" -keyfile "$issuer.key" \
		"${dates[@]}" -extfile "work/$name.ext" -extensions ext \
		-in "work/$name.csr" -out "$name.pem" 2>work/ca.log || { cat work/ca.log >&2; exit 1; }
}

mkca ca "cluster.local root"
mkca second-ca "unconfigured root"
mkca otherdomain-ca "other.example root"
mkca evil-ca "evil.example root"

leaf gateway ca "DNS:localhost,DNS:meshgate.test,IP:127.0.0.1,IP:198.18.3.2,URI:spiffe://cluster.local/ns/meshgate/sa/gateway" "serverAuth,clientAuth"
cat gateway.pem ca.pem > gateway-chain.pem
cat ca.pem otherdomain-ca.pem > bundle.pem

td=spiffe://cluster.local
leaf frontend ca "URI:$td/ns/prod/sa/frontend" clientAuth
leaf other ca "URI:$td/ns/prod/sa/other" clientAuth
leaf ns-dev ca "URI:$td/ns/dev/sa/tool" clientAuth
leaf expired ca "URI:$td/ns/prod/sa/frontend" clientAuth 20200101000000Z 20210101000000Z
leaf not-yet-valid ca "URI:$td/ns/prod/sa/frontend" clientAuth 20990101000000Z 21000101000000Z
leaf no-uri ca "DNS:frontend.prod.svc" clientAuth
leaf server-eku-only ca "URI:$td/ns/prod/sa/frontend" serverAuth
leaf no-eku ca "URI:$td/ns/prod/sa/frontend" ""
leaf two-uris ca "URI:$td/ns/prod/sa/frontend,URI:$td/ns/prod/sa/other" clientAuth
leaf unknown-td evil-ca "URI:spiffe://evil.example/ns/prod/sa/frontend" clientAuth
leaf other-ca second-ca "URI:$td/ns/prod/sa/frontend" clientAuth
leaf otherdomain otherdomain-ca "URI:spiffe://other.example/ns/payments/sa/api" clientAuth
leaf bad-spiffe ca "URI:$td/ns/prod/sa/../x" clientAuth
leaf http-uri ca "URI:https://cluster.local/ns/prod/sa/frontend" clientAuth

newkey gateway-rsa.key rsa
leaf gateway-rsa ca "DNS:localhost,IP:127.0.0.1" "serverAuth" "" "" reuse
cat gateway-rsa.pem ca.pem > gateway-rsa-chain.pem

chmod 644 ./*.pem
rm -rf work
touch .complete
cd /
if [[ ! -f $final/.complete || $final/.complete -ot $self ]]; then
	rm -rf "$final"
	mv "$tmp" "$final" 2>/dev/null || true
fi
[[ -f $final/.complete ]]
