# Helpers of the TLS compatibility tests (tls_options.bats, tls_unified.bats): load after
# ../integration/helpers. The keys are made with openssl in $KEYS, per run.

# sign NAME SUBJECT CA [x509 args]: $KEYS/NAME.key, NAME.crt, NAME.pem (certificate + key),
# signed by $KEYS/CA.pem.
sign() {
  local name="$1" subject="$2" ca="$3"; shift 3
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$KEYS/$name.key" \
    -out "$KEYS/$name.csr" 2> /dev/null
  openssl x509 -req -days 2 -in "$KEYS/$name.csr" -CA "$KEYS/$ca.pem" -CAkey "$KEYS/$ca.key" \
    -CAcreateserial -out "$KEYS/$name.crt" "$@" 2> /dev/null
  cat "$KEYS/$name.crt" "$KEYS/$name.key" > "$KEYS/$name.pem"
}
