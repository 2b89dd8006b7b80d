#!/usr/bin/env bash
# Build the Rust seed (whetherharder/rs_cdr_generator at 894091e) offline, outside this
# repository, and its plain-CSV variant for measurement. See docs/rust-seed.md.
#
#   benchmarks/build_rust_seed.sh MIRROR [DEST]
#
# MIRROR: a git repository holding the seed's history (the path the `fetch` tool returns
#         for github:whetherharder/rs_cdr_generator, or any clone of it).
# DEST:   where to put the two checkouts and the binaries (default /work/rust-seed-build);
#         must be outside this repository. Made if missing; existing checkouts are reused.
#
# Leaves DEST/bin/rs_cdr_generator (the seed as it is: gzip, zlib level 6) and
# DEST/bin/rs_cdr_generator_plain (the same program writing plain CSV). Nothing of the
# seed's code is in this script: it only edits version requirements in its Cargo.toml and
# replaces a few names in two of its files (the edit is shown in docs/rust-seed.md).
#
# Needs cargo/rustc and Debian's crates: apt-get install librust-{clap,rand,rand-distr,
# chrono,chrono-tz,serde,serde-json,serde-yaml,csv,flate2,anyhow,thiserror,rayon,
# num-traits,pathdiff,num-cpus}-dev (they land in /usr/share/cargo/registry).
set -euo pipefail

COMMIT=894091e
REGISTRY=/usr/share/cargo/registry
CRATES=(clap rand rand-distr chrono chrono-tz serde serde-json serde-yaml csv flate2 anyhow
        thiserror rayon num-traits pathdiff num-cpus)

die() { echo "build_rust_seed: $*" >&2; exit 2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 MIRROR [DEST]"
MIRROR=$1
DEST=${2:-/work/rust-seed-build}
git -C "$MIRROR" cat-file -e "$COMMIT^{commit}" 2>/dev/null \
    || die "$MIRROR: not a git repository holding commit $COMMIT"
command -v cargo >/dev/null || die "cargo is not installed"
[ -d "$REGISTRY" ] || die "$REGISTRY is missing: apt-get install $(printf 'librust-%s-dev ' "${CRATES[@]}")"
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
case "$DEST/" in "$HERE"/*) die "DEST $DEST is inside this repository: put it outside";; esac

# A checkout at COMMIT with Debian's crates as its only registry and the relaxed manifest.
checkout() {
    local dir=$1
    if [ ! -d "$dir/.git" ]; then
        git clone -q "$MIRROR" "$dir"
    fi
    git -C "$dir" checkout -q -f "$COMMIT"
    git -C "$dir" clean -q -fdx -e target
    mkdir -p "$dir/.cargo"
    cat > "$dir/.cargo/config.toml" <<EOF
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$REGISTRY"
EOF
    # Version requirements Debian's (older) crates meet; criterion (benches only) is not
    # packaged, so [dev-dependencies] and the [[bench]] table go. The program is unchanged.
    python3 - "$dir/Cargo.toml" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
relax = {"clap": "4", "csv": "1", "rayon": "1", "num_cpus": "1",
         "chrono-tz": "*", "serde_yaml": "*", "thiserror": "*"}
for name, req in relax.items():
    text, n = re.subn(rf'(?m)^({re.escape(name)} = (?:\{{ version = )?)"[^"]*"',
                      rf'\g<1>"{req}"', text)
    if n != 1:
        sys.exit(f"build_rust_seed: {path}: dependency {name} not found once")
out, skip = [], False
for line in text.splitlines(keepends=True):
    if line.startswith("["):
        skip = line.strip() in ("[dev-dependencies]", "[[bench]]")
    if not skip:
        out.append(line)
open(path, "w").write("".join(out))
EOF
}

build() {
    local dir=$1 bin=$2
    # One target directory for both checkouts: the crates are compiled once.
    (cd "$dir" && CARGO_TARGET_DIR="$DEST/target" cargo build --release --offline -q)
    mkdir -p "$DEST/bin"
    cp "$DEST/target/release/rs_cdr_generator" "$DEST/bin/$bin"
    echo "built $DEST/bin/$bin"
}

checkout "$DEST/seed"
build "$DEST/seed" rs_cdr_generator

# The plain-CSV variant: the csv writer writes to the BufWriter directly (no GzEncoder,
# so no finish()), and the shard and bundle file names end in .csv instead of .csv.gz.
checkout "$DEST/plain"
(
    cd "$DEST/plain"
    sed -i -e 's/Writer<GzEncoder<BufWriter<File>>>/Writer<BufWriter<File>>/' \
           -e 's/writer\.into_inner()?\.finish()?;/drop(writer);/' \
           -e 's/let compressed = GzEncoder::new(buffered, Compression::default());/let compressed = buffered;/' \
           -e 's/part{:03}\.csv\.gz"/part{:03}.csv"/' \
           -e '/^use flate2::/d' src/writer.rs
    sed -i -e '/fn bundle_day/,/^}/ s/\.csv\.gz/.csv/' src/utils.rs
    # Every replacement must have happened (a different source would fail here, not later).
    ! grep -q 'GzEncoder\|\.finish()\|csv\.gz' src/writer.rs \
        || die "plain variant: src/writer.rs still mentions gzip"
    [ "$(sed -n '/fn bundle_day/,/^}/p' src/utils.rs | grep -c 'csv\.gz')" = 0 ] \
        || die "plain variant: bundle_day still matches .csv.gz"
)
build "$DEST/plain" rs_cdr_generator_plain
"$DEST/bin/rs_cdr_generator" --version >/dev/null 2>&1 || true
echo "done: $DEST/bin/rs_cdr_generator (gzip, zlib level 6) and" \
     "$DEST/bin/rs_cdr_generator_plain (plain CSV)"
