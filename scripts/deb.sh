#!/usr/bin/env bash
# Builds the Debian package with dpkg-deb alone (no debhelper): the release binary, the
# packaged config as a conffile, the systemd unit, the logrotate snippet, odyssey(1) made
# from --help, copyright and changelog. Prints the .deb's path.
#   scripts/deb.sh [OUT_DIR]         (default build/deb)
# ODYSSEY_BIN names a binary already built; otherwise cargo builds the release one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/build/deb}" && cd "${1:-$root/build/deb}" && pwd)
meta=$root/packaging/debian

bin=${ODYSSEY_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && ${CARGO:-cargo} build --release --bin odyssey)
  bin=${CARGO_TARGET_DIR:-$root/target}/release/odyssey
fi

# The package version is the changelog's; it must carry the crate's version.
version=$(sed -n '1s/^odyssey (\(.*\)).*/\1/p' "$meta/changelog")
crate=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
case "$version" in
  "$crate"-*) ;;
  *) echo "deb: changelog version $version does not match Cargo.toml's $crate" >&2; exit 1 ;;
esac
arch=$(dpkg --print-architecture)

# Staged where dpkg-shlibdeps expects a package's files: debian/<package>.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/debian/odyssey
doc=$pkg/usr/share/doc/odyssey

# Files: owner root comes from dpkg-deb --root-owner-group, modes from install -m.
install -D -m 0755 "$bin" "$pkg/usr/bin/odyssey"
# The release profile keeps line tables for backtraces; a package ships the stripped binary.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/bin/odyssey"
install -D -m 0644 "$root/packaging/odyssey.conf" "$pkg/etc/odyssey/odyssey.conf"
install -D -m 0644 "$root/packaging/odyssey.logrotate" "$pkg/etc/logrotate.d/odyssey"
install -D -m 0644 "$root/packaging/odyssey.service" "$pkg/lib/systemd/system/odyssey.service"
install -d -m 0755 "$pkg/usr/share/man/man1" "$doc"
"$root/scripts/manpage.sh" "$bin" | gzip -9n > "$pkg/usr/share/man/man1/odyssey.1.gz"
install -m 0644 "$meta/copyright" "$doc/copyright"
gzip -9n < "$meta/changelog" > "$doc/changelog.Debian.gz"
install -D -m 0644 "$meta/lintian-overrides" "$pkg/usr/share/lintian/overrides/odyssey"
chmod 0644 "$pkg/usr/share/man/man1/odyssey.1.gz" "$doc/changelog.Debian.gz"

# Shared libraries the binary links, as Depends (dpkg-shlibdeps wants a debian/control, and
# finds the package's root by its DEBIAN directory).
install -d -m 0755 "$pkg/DEBIAN"
printf 'Source: odyssey\n\nPackage: odyssey\nArchitecture: any\n' > "$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O debian/odyssey/usr/bin/odyssey | sed -n 's/^shlibs:Depends=//p')

install -m 0644 "$meta/conffiles" "$pkg/DEBIAN/conffiles"
for script in postinst prerm postrm; do
  install -m 0755 "$meta/$script" "$pkg/DEBIAN/$script"
done
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
  -e "s/@SHLIBS@/$shlibs/" "$meta/control" > "$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
  | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/md5sums"

deb=$out/odyssey_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
