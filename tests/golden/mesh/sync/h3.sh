set -e
stripped=$(wg-quick strip wg0)
printf '%s\n' "$stripped" | awk -v keyfile=/etc/wireguard/private.key '{ print } $0 == "[Interface]" { if ((getline key < keyfile) > 0) print "PrivateKey = " key }' | wg syncconf wg0 /dev/stdin
wg set wg0 peer AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= preshared-key /etc/wireguard/psk/h1.psk
wg set wg0 peer AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI= preshared-key /etc/wireguard/psk/h2.psk
