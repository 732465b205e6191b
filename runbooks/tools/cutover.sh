#!/bin/sh
# Stands in for the DNS cutover of runbooks/vod.yaml: a real one would point the service's name at
# the DR site (an API call to the DNS provider). This one only says what it would do.
echo "cutover: would point vod.example.com at 127.0.0.1:${1:-18100} (stand-in: nothing changed)"
