#!/usr/bin/env bash
# Regenerates the committed test keys + OpenSSL-made signatures (run from project root).
set -euo pipefail
cd "$(dirname "$0")"
MSG=msg.bin
printf 'scopegate test message for openssl-made signatures' > $MSG
gen() { # name bits exp
  local name=$1 bits=$2 exp=$3
  if [ ! -f $name.p8.der ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:$bits -pkeyopt rsa_keygen_pubexp:$exp -out $name.pem 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in $name.pem -outform DER -out $name.p8.der  # PKCS#8 for ring
    rm -f $name.pem
  fi
  openssl rsa -inform DER -in $name.p8.der -noout -modulus | sed 's/^Modulus=//' > $name.n.hex
  printf '%x\n' $exp > $name.e.hex
  for h in sha256 sha384 sha512; do
    openssl dgst -$h -sign $name.p8.der -keyform DER -out $name.pkcs1.$h.sig $MSG
    openssl dgst -$h -sign $name.p8.der -keyform DER -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -sigopt rsa_mgf1_md:$h -out $name.pss.$h.sig $MSG
  done
  echo $name >> manifest.tmp
}
rm -f manifest.tmp
gen k2048a 2048 65537; gen k2048b 2048 65537; gen k2048c 2048 65537
gen k2049 2049 65537; gen k2056 2056 65537; gen k2055 2055 65537
gen k3072a 3072 65537; gen k3072b 3072 65537; gen k3073 3073 65537
gen k4096a 4096 65537; gen k4096b 4096 65537; gen k4095 4095 65537
gen k2048e3 2048 3; gen k2048e17 2048 17; gen k3072emax 3072 4294967291
gen k4096e3 4096 3; gen k6144 6144 65537; gen k8192 8192 65537
mv manifest.tmp manifest
