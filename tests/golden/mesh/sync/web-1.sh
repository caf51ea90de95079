set -e
stripped=$(wg-quick strip wg0)
printf '%s\n' "$stripped" | awk -v keyfile=/etc/wireguard/private.key '{ print } $0 == "[Interface]" { if ((getline key < keyfile) > 0) print "PrivateKey = " key }' | wg syncconf wg0 /dev/stdin
wg set wg0 peer BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgY= preshared-key /dev/null
wg set wg0 peer BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc= preshared-key /dev/null
wg set wg0 peer CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg= preshared-key /dev/null
sysctl -q -w net.ipv4.conf.wg0.forwarding=1
