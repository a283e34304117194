#!/bin/sh
# The daemon side.ini attaches: it records its pid in $1/daemon.pids and
# sleeps until it is stopped.
echo $$ >> "$1/daemon.pids"
exec sleep 300
