#!/usr/bin/env bash
# The manual (man/, mdoc): cardsync(7) and a page for each program render
# without a warning, and each program's page names every option its --help
# lists, and the auditor's every command.
set -u
. "$(dirname "$0")/lib/common.sh"

for page in man/cardsync.7 man/cardsync-{producer,differ,pusher,auditor}.8; do
    check "$page exists" test -s "$page"
    MANWIDTH=80 man --warnings -l "$page" > "$CS_TMP/page.txt" 2> "$CS_TMP/warnings.txt"
    check "$page renders" test -s "$CS_TMP/page.txt"
    check "$page renders without a warning" test ! -s "$CS_TMP/warnings.txt"
    [ -s "$CS_TMP/warnings.txt" ] && head -5 "$CS_TMP/warnings.txt"
done
for p in producer differ pusher auditor; do
    MANWIDTH=200 man -l "man/cardsync-$p.8" 2>/dev/null > "$CS_TMP/$p.txt"
    for opt in $("$CS_BIN/cardsync-$p" --help | sed -n 's/^  \(--[a-z-]*\).*/\1/p'); do
        check "cardsync-$p(8) documents $opt" grep -q -- "$opt" "$CS_TMP/$p.txt"
    done
done
for c in status tail history member failed replay held approve unmatched orphans serve; do
    check "cardsync-auditor(8) documents $c" grep -qE "^ +$c( |$)" "$CS_TMP/auditor.txt"
done
finish
