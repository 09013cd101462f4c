#!/usr/bin/env bash
# Writes odyssey(1) in roff to stdout from the binary's own --help and -V, so the man page
# never disagrees with the options the binary takes.
#   scripts/manpage.sh path/to/odyssey > odyssey.1
set -euo pipefail
bin=${1:?usage: manpage.sh path/to/odyssey}

# roff treats a leading dot or quote as a request and a backslash as an escape.
roff_escape() {
  sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^[.']/\\\\\\&&/"
}

# Read whole: a reader that stops early would leave the binary writing into a closed pipe.
help=$("$bin" --help)
version=$("$bin" -V)
version=$(printf '%s\n' "$version" | awk 'NR == 1 {print $2}')
usage=$(printf '%s\n' "$help" | sed -n '1s/^Usage: odyssey //p')

cat <<ROFF
.TH ODYSSEY 1 "" "odyssey $version" "User Commands"
.SH NAME
odyssey \- multi-threaded PostgreSQL connection pooler and request router
.SH SYNOPSIS
.B odyssey
$(printf '%s\n' "$usage" | roff_escape)
.SH DESCRIPTION
.B odyssey
pools and routes client connections to PostgreSQL servers as its configuration file says.
This is Odyssey in Rust, a drop-in replacement for Yandex Odyssey: it reads the same
configuration file.
.SH OPTIONS
ROFF

# --help lists an option on a line of its own that starts with blanks and a dash, its
# description after a run of blanks or on the next, deeper line.
printf '%s\n' "$help" | roff_escape | awk '
  /^Options:/ { inside = 1; next }
  !inside || /^[[:space:]]*$/ { next }
  { sub(/[[:space:]]+$/, "") }
  /^[[:space:]]+\\-/ {
    sub(/^[[:space:]]+/, "")
    split($0, parts, /  +/)
    print ".TP"
    print parts[1]
    if (parts[2] != "") print parts[2]
    next
  }
  { sub(/^[[:space:]]+/, ""); print }
'

cat <<'ROFF'
.SH SIGNALS
.TP
.B SIGHUP
reload the configuration file.
.TP
.B SIGUSR1
reopen the log file (logrotate).
.TP
.B SIGUSR2
online restart: start the binary again and hand it the listening sockets.
.TP
.B SIGTERM, SIGINT
shut down gracefully.
.SH FILES
.TP
.I /etc/odyssey/odyssey.conf
the configuration file the packaged systemd unit runs with.
.TP
.I /var/log/odyssey/odyssey.log
the log file of the packaged configuration.
.SH SEE ALSO
.BR psql (1),
.BR postgres (1)
ROFF
