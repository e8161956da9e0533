#!/usr/bin/env bash
# make deb: the package holds what it should (the four programs, their
# manual, the units, sysusers.d, tmpfiles.d, the config as a conffile, the
# secrets templates, bash completion), its programs run and know their
# version, its pages render without a warning, lintian has nothing to say;
# then dpkg installs it, an upgrade to a rebuilt next version keeps state.db,
# audit.db, the changed config and the secrets, and a purge removes them.
set -u
. "$(dirname "$0")/lib/common.sh"

if ! git rev-parse --git-dir >/dev/null 2>&1; then
    echo "SKIP: make deb exports the tree with git archive; this copy is not a git repository"
    finish; exit
fi
version=$(cat VERSION)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
run env DEB_OUT="$CS_TMP/deb1" make --no-print-directory deb
expect_rc 0 "make deb"
expect_out "cardsync_${version}_$arch.deb" "make deb says where the package is"
deb=$CS_TMP/deb1/cardsync_${version}_$arch.deb
check "the package is there" test -s "$deb"

# --- what it holds -----------------------------------------------------------
root=$CS_TMP/root
dpkg-deb -x "$deb" "$root"
(cd "$root" && find . \( -type f -o -type l \) | sed 's#^\./#/#' | sort) > "$CS_TMP/files"
cat > "$CS_TMP/expected" <<LIST
/etc/cardsync/cardsync.ini
/lib/systemd/system/cardsync-auditor.service
/lib/systemd/system/cardsync-differ.service
/lib/systemd/system/cardsync-producer.service
/lib/systemd/system/cardsync-pusher.service
/lib/systemd/system/cardsync-web.service
/lib/systemd/system/cardsync.target
/usr/bin/cardsync-auditor
/usr/bin/cardsync-differ
/usr/bin/cardsync-producer
/usr/bin/cardsync-pusher
/usr/lib/sysusers.d/cardsync.conf
/usr/lib/tmpfiles.d/cardsync.conf
/usr/share/bash-completion/completions/cardsync-auditor
/usr/share/bash-completion/completions/cardsync-differ
/usr/share/bash-completion/completions/cardsync-producer
/usr/share/bash-completion/completions/cardsync-pusher
/usr/share/cardsync/secrets/auditor.env
/usr/share/cardsync/secrets/producer.env
/usr/share/cardsync/secrets/pusher.env
/usr/share/cardsync/secrets/web.env
/usr/share/doc/cardsync/changelog.gz
/usr/share/doc/cardsync/copyright
/usr/share/lintian/overrides/cardsync
/usr/share/man/man7/cardsync.7.gz
/usr/share/man/man8/cardsync-auditor.8.gz
/usr/share/man/man8/cardsync-differ.8.gz
/usr/share/man/man8/cardsync-producer.8.gz
/usr/share/man/man8/cardsync-pusher.8.gz
LIST
check "the package holds exactly the expected files" diff "$CS_TMP/expected" "$CS_TMP/files"
dpkg-deb -e "$deb" "$CS_TMP/control"
check "cardsync.ini is a conffile" grep -qx /etc/cardsync/cardsync.ini "$CS_TMP/control/conffiles"
check "sysusers.d makes the cardsync user" grep -q '^u cardsync ' "$root/usr/lib/sysusers.d/cardsync.conf"
check "tmpfiles.d makes /run/cardsync and /var/lib/cardsync, 0700" \
    sh -c "grep -q '^d /run/cardsync *0700 cardsync' '$root/usr/lib/tmpfiles.d/cardsync.conf' &&
           grep -q '^d /var/lib/cardsync *0700 cardsync' '$root/usr/lib/tmpfiles.d/cardsync.conf'"
check "the top changelog entry is VERSION" \
    test "$(dpkg-deb -f "$deb" Version)" = "$version"
check "the units run the packaged programs" \
    grep -q '^ExecStart=/usr/bin/cardsync-pusher ' "$root/lib/systemd/system/cardsync-pusher.service"
for p in producer pusher auditor web; do
    check "cardsync-$p.service loads its own secrets file only" \
        test "$(grep '^EnvironmentFile=' "$root/lib/systemd/system/cardsync-$p.service")" = "EnvironmentFile=-/etc/cardsync/$p.env"
done
check "the differ loads no secrets" sh -c "! grep -q '^EnvironmentFile=' '$root/lib/systemd/system/cardsync-differ.service'"

# --- its programs -------------------------------------------------------------
for p in producer differ pusher auditor; do
    run "$root/usr/bin/cardsync-$p" --version
    expect_rc 0 "unpacked cardsync-$p --version"
    expect_out "$version" "cardsync-$p --version says $version"
    run "$root/usr/bin/cardsync-$p" --help
    expect_rc 0 "unpacked cardsync-$p --help"
    expect_out "usage: cardsync-$p" "cardsync-$p --help"
done
run env CARDSYNC_CARDSKIPPER_PASSWORD=x CARDSYNC_DEVICE_DOOR1_PASSWORD=x CARDSYNC_DEVICE_DOOR2_PASSWORD=x \
    "$root/usr/bin/cardsync-differ" --config "$root/etc/cardsync/cardsync.ini" --check-config
expect_rc 0 "the packaged config passes --check-config"

# --- its manual -------------------------------------------------------------------
for page in "$root"/usr/share/man/man7/*.gz "$root"/usr/share/man/man8/*.gz; do
    MANWIDTH=80 man --warnings -l "$page" > "$CS_TMP/page.txt" 2> "$CS_TMP/warnings.txt"
    check "$(basename "$page") renders" test -s "$CS_TMP/page.txt"
    check "$(basename "$page") renders without a warning" test ! -s "$CS_TMP/warnings.txt"
    check "$(basename "$page") names the version" grep -q "cardsync $version" "$CS_TMP/page.txt"
done

# --- bash completion: every option of --help, every auditor command --------------
comp=$root/usr/share/bash-completion/completions/cardsync-auditor
complete_words () {   # complete_words WORD...: what completing the last word offers
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _cardsync "$1"; printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$@"
}
for p in producer differ pusher auditor; do
    complete_words "cardsync-$p" -- > "$CS_TMP/offered"
    for opt in $("$root/usr/bin/cardsync-$p" --help | sed -n 's/^  \(--[a-z-]*\).*/\1/p'); do
        check "completion offers cardsync-$p $opt" grep -qx -- "$opt" "$CS_TMP/offered"
    done
done
complete_words cardsync-auditor "" > "$CS_TMP/offered"
for c in $("$root/usr/bin/cardsync-auditor" --help | sed -n '/^Without a command/,/^$/s/^  \([a-z]\{1,\}\) .*/\1/p'); do
    check "completion offers the auditor's command $c" grep -qx "$c" "$CS_TMP/offered"
done
check "completion offers the config's devices after --device" \
    test "$(complete_words cardsync-auditor --config cardsync.ini.example replay --device "" | tr '\n' ' ')" = "door1 door2 "

# --- lintian ---------------------------------------------------------------------------
lintian --pedantic "$deb" > "$CS_TMP/lintian.txt" 2>&1
grep -v 'running with root privileges is not recommended' "$CS_TMP/lintian.txt" > "$CS_TMP/lintian.tags"
check "lintian --pedantic reports nothing (overrides in debian/cardsync.lintian-overrides)" \
    test ! -s "$CS_TMP/lintian.tags"
cat "$CS_TMP/lintian.tags"

# --- install, upgrade, purge ---------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: installing the package with dpkg needs root"
    finish; exit
fi
if dpkg-query -W -f='${Status}' cardsync 2>/dev/null | grep -q installed; then
    echo "SKIP: cardsync is installed on this machine; the test will not replace it"
    finish; exit
fi
run dpkg -i "$deb"
expect_rc 0 "dpkg -i (systemd is $( [ -d /run/systemd/system ] && echo running || echo not running): nothing is started)"
check "the cardsync user exists" getent passwd cardsync
check "/usr/bin/cardsync-auditor is the packaged one" test "$(/usr/bin/cardsync-auditor --version)" = "$("$root/usr/bin/cardsync-auditor" --version)"
check "/var/lib/cardsync is 0700 cardsync" test "$(stat -c '%a %U' /var/lib/cardsync)" = "700 cardsync"
for p in producer pusher auditor web; do
    check "/etc/cardsync/$p.env is 0640 root:cardsync" test "$(stat -c '%a %U:%G' /etc/cardsync/$p.env)" = "640 root:cardsync"
done
sqlite3 /var/lib/cardsync/state.db "CREATE TABLE kept (v); INSERT INTO kept VALUES ('state 1');"
sqlite3 /var/lib/cardsync/audit.db "CREATE TABLE kept (v); INSERT INTO kept VALUES ('audit 1');"
chown cardsync: /var/lib/cardsync/state.db /var/lib/cardsync/audit.db
sed -i 's/^log_level = info /log_level = debug/' /etc/cardsync/cardsync.ini
echo "CARDSYNC_CARDSKIPPER_PASSWORD=kept-secret" >> /etc/cardsync/producer.env

next=$version+1
run env DEB_OUT="$CS_TMP/deb2" make --no-print-directory deb VERSION="$next"
expect_rc 0 "make deb VERSION=$next"
deb2=$CS_TMP/deb2/cardsync_${next}_$arch.deb
run dpkg -i "$deb2" < /dev/null
expect_rc 0 "dpkg -i the next version (upgrade)"
check "the installed version is $next" test "$(dpkg-query -W -f='${Version}' cardsync)" = "$next"
check "the programs say $next" sh -c "/usr/bin/cardsync-differ --version | grep -qF '$next'"
check "state.db survived the upgrade" test "$(sqlite3 /var/lib/cardsync/state.db 'SELECT v FROM kept')" = "state 1"
check "audit.db survived the upgrade" test "$(sqlite3 /var/lib/cardsync/audit.db 'SELECT v FROM kept')" = "audit 1"
check "the changed config was kept" grep -q '^log_level = debug' /etc/cardsync/cardsync.ini
check "the secrets were kept" grep -qx 'CARDSYNC_CARDSKIPPER_PASSWORD=kept-secret' /etc/cardsync/producer.env
check "and still 0640 root:cardsync" test "$(stat -c '%a %U:%G' /etc/cardsync/producer.env)" = "640 root:cardsync"

run dpkg --purge cardsync
expect_rc 0 "dpkg --purge cardsync"
check "the programs are gone" test ! -e /usr/bin/cardsync-differ
check "state.db and audit.db are gone" test ! -e /var/lib/cardsync
check "the config and the secrets are gone" test ! -e /etc/cardsync
finish
