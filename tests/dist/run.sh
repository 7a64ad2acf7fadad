#!/usr/bin/env bash
# The artifacts of `make dist` as a user without Rust gets them. In a scratch directory
# outside the repository, with cargo, rustc and rustup off PATH (stand-ins that record any
# call and fail take their place):
#   - the wheel into a fresh venv, imported from elsewhere;
#   - the npm tarball into a fresh project, loaded from its prebuilds (CJS and ESM);
#   - the C SDK unpacked: SONAME and symlinks, no debug info, presence.pc, and a CMake
#     project using find_package(presence), linked shared and static, run;
#   - every code block of README.md and the bindings' READMEs (tests/snippets/run.py):
#     the quick starts install the artifacts as written and run.
# Then, with the toolchain back, the sdist builds a working wheel from source.
# Install times and sizes go to stdout and to $REPORT (target/dist/report.txt).
set -euo pipefail

: "${DIST_DIR:?}" "${VERSION:?}" "${SONAME:?}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON3=${PYTHON3:-python3}
NODE=${NODE:-node}
NPM=${NPM:-npm}
REPORT=${REPORT:-$ROOT/target/dist/report.txt}
PY_CARGO_DIR=${PY_CARGO_DIR:-$ROOT/target/python/cargo}
DIST_VENV=${DIST_VENV:-$ROOT/target/dist/build-venv}

WHEEL=$(ls "$DIST_DIR"/presence_engine-"$VERSION"-cp310-abi3-manylinux*_x86_64.whl)
SDIST=$DIST_DIR/presence_engine-$VERSION.tar.gz
NPM_TARBALL=$DIST_DIR/presence-engine-$VERSION.tgz
SDK_NAME=presence-sdk-$VERSION-linux-x86_64
SDK_TARBALL=$DIST_DIR/$SDK_NAME.tar.gz
for f in "$WHEEL" "$SDIST" "$NPM_TARBALL" "$SDK_TARBALL"; do
  [ -f "$f" ] || { echo "missing artifact: $f (run make dist)"; exit 1; }
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/presence-dist.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
case "$scratch/" in "$ROOT"/*) echo "scratch $scratch is inside the repository"; exit 1 ;; esac
mkdir -p "$(dirname "$REPORT")"
: > "$REPORT"

fail() { echo "test-dist: FAIL: $*" >&2; exit 1; }
say() { echo "$*" | tee -a "$REPORT"; }
size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
# timed LABEL CMD...: runs CMD, reports its wall time.
timed() {
  local label=$1 start end
  shift
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  say "$(awk -v s="$start" -v e="$end" -v l="$label" 'BEGIN { printf "install time, %s: %.1f s", l, e - s }')"
}

# --- No Rust toolchain from here on -------------------------------------------------
REAL_PATH=$PATH
norust=$scratch/no-rust-bin
mkdir -p "$norust"
# pip asks `rustc --version` for its User-Agent string: a probe, answered "not found" and
# counted, not a build. Any other call fails the test.
for tool in cargo rustc rustup; do
  cat > "$norust/$tool" <<EOF
#!/bin/sh
if [ "\$*" = "--version" ]; then log=rust-probes.log; else log=rust-calls.log; fi
echo "$tool \$* (from: \$(ps -o args= -p \$PPID))" >> "$scratch/\$log"
echo "$tool is not available here (test-dist)" >&2
exit 127
EOF
  chmod +x "$norust/$tool"
done
path=$norust
IFS=: read -ra entries <<< "$PATH"
for d in "${entries[@]}"; do
  [ -n "$d" ] || continue
  if [ -x "$d/cargo" ] || [ -x "$d/rustc" ]; then continue; fi
  path=$path:$d
done
export PATH=$path
unset CARGO RUSTC RUSTUP_HOME RUSTUP_TOOLCHAIN CARGO_HOME CARGO_TARGET_DIR PRESENCE_LIB NODE_PATH PYTHONPATH VIRTUAL_ENV
[ "$(command -v cargo)" = "$norust/cargo" ] || fail "cargo still resolves to $(command -v cargo)"
[ "$(command -v rustc)" = "$norust/rustc" ] || fail "rustc still resolves to $(command -v rustc)"
# The guard itself: a build attempt is caught and recorded.
if cargo build 2>/dev/null; then fail "the cargo stand-in succeeded"; fi
[ -s "$scratch/rust-calls.log" ] || fail "the cargo stand-in did not record a call"
rm "$scratch/rust-calls.log"
cd "$scratch"

say "artifacts ($DIST_DIR):"
for f in "$WHEEL" "$SDIST" "$NPM_TARBALL" "$SDK_TARBALL"; do
  say "  $(basename "$f"): $(size "$f") bytes ($(mib "$(size "$f")"))"
done

# --- Python: the wheel into a fresh venv ----------------------------------------------
"$PYTHON3" -m venv "$scratch/py/venv"
timed "wheel (pip install into a fresh venv)" \
  "$scratch/py/venv/bin/pip" install --quiet --disable-pip-version-check "$WHEEL"
mkdir -p "$scratch/py/elsewhere"
(cd "$scratch/py/elsewhere" && "$scratch/py/venv/bin/python" - "$scratch/py/venv" <<'EOF'
import pathlib, sys
import presence_engine as pe
from presence_engine import Engine
here = pathlib.Path(pe.__file__).resolve()
assert here.is_relative_to(pathlib.Path(sys.argv[1]).resolve()), here
e = Engine()
e.track("room", 1, key="alice")
assert tuple(e.counts("room")) == (0, 1, 1), e.counts("room")
print(f"wheel: presence_engine {pe.__version__} from {here.parent}")
EOF
)

# --- Node: the tarball into a fresh project --------------------------------------------
mkdir -p "$scratch/node"
printf '{ "name": "consumer", "private": true }\n' > "$scratch/node/package.json"
(cd "$scratch/node" && timed "npm tarball (npm install into a fresh project, koffi from the registry)" \
  "$NPM" install --no-audit --no-fund --loglevel=error "$NPM_TARBALL")
installed=$(cd "$scratch/node/node_modules/presence-engine" && pwd -P)
case "$installed/" in "$ROOT"/*) fail "the npm package resolved into the repository: $installed" ;; esac
lib=$installed/prebuilds/linux-x64/libpresence.so
[ -f "$lib" ] || fail "the tarball has no $lib"
readelf -S "$lib" | grep -q '\.debug_' && fail "$lib carries debug info"
say "  npm prebuilt libpresence.so: $(size "$lib") bytes ($(mib "$(size "$lib")"))"
cat > "$scratch/node/check.cjs" <<'EOF'
const pe = require('presence-engine');
const e = new pe.Engine();
e.track('room', 1, 'alice');
const [d] = e.pollDiff();
if (d.counts.users !== 1) throw new Error(JSON.stringify(d));
console.log(`npm CJS: presence-engine ${pe.version()} from ${pe.libraryPath()}`);
e.close();
EOF
cat > "$scratch/node/check.mjs" <<'EOF'
import { Engine, libraryPath, version } from 'presence-engine';
const e = new Engine({ format: 'phoenix' });
e.track('room', 1, 'alice', { device: 'phone' });
const [d] = e.pollDiff();
if (!d.payload.joins.alice) throw new Error(JSON.stringify(d));
console.log(`npm ESM: presence-engine ${version()} from ${libraryPath()}`);
e.close();
EOF
for f in check.cjs check.mjs; do
  out=$(cd "$scratch/node" && "$NODE" "$f")
  echo "$out"
  [[ $out == *"from $lib" ]] || fail "$f loaded another library: $out"
done
# The README's ws server needs ws next to the package (from the npm registry).
(cd "$scratch/node" && "$NPM" install --no-audit --no-fund --loglevel=error ws@8)

# --- C SDK: unpack, inspect, pkg-config and CMake --------------------------------------
mkdir -p "$scratch/c"
timed "C SDK (tar xzf)" tar -xzf "$SDK_TARBALL" -C "$scratch/c"
sdk=$scratch/c/$SDK_NAME
for f in include/presence.h lib/libpresence.so.$VERSION lib/libpresence.a lib/pkgconfig/presence.pc \
  lib/cmake/presence/presenceConfig.cmake lib/cmake/presence/presenceConfigVersion.cmake; do
  [ -f "$sdk/$f" ] || fail "the SDK has no $f"
done
[ "$(readlink "$sdk/lib/$SONAME")" = "libpresence.so.$VERSION" ] || fail "lib/$SONAME is not a link to libpresence.so.$VERSION"
[ "$(readlink "$sdk/lib/libpresence.so")" = "$SONAME" ] || fail "lib/libpresence.so is not a link to $SONAME"
soname=$(readelf -d "$sdk/lib/libpresence.so.$VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "$SONAME" ] || fail "SONAME is '$soname', expected $SONAME"
for f in "$sdk/lib/libpresence.so.$VERSION" "$sdk/lib/libpresence.a"; do
  readelf -S "$f" | grep -q '\.debug_' && fail "$f carries debug info"
  say "  SDK $(basename "$f"): $(size "$f") bytes ($(mib "$(size "$f")"))"
done
glibc=$(objdump -T "$sdk/lib/libpresence.so.$VERSION" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1)
say "  libpresence.so needs at most $glibc"
export PKG_CONFIG_PATH=$sdk/lib/pkgconfig
[ "$(pkg-config --modversion presence)" = "$VERSION" ] || fail "pkg-config --modversion presence"
[ "$(cd "$(pkg-config --variable=libdir presence)" && pwd -P)" = "$(cd "$sdk/lib" && pwd -P)" ] \
  || fail "presence.pc does not point into the unpacked SDK"

cmake_project() { # NAME STATIC(ON|OFF)
  local build=$scratch/c/cmake-$1
  cmake -S "$ROOT/tests/dist/cmake" -B "$build" -DCMAKE_PREFIX_PATH="$sdk" \
    -DPRESENCE_USE_STATIC_LIBS="$2" -DCMAKE_BUILD_TYPE=Release > "$build.log" 2>&1 \
    || { cat "$build.log"; fail "cmake configure ($1)"; }
  cmake --build "$build" > "$build.log" 2>&1 || { cat "$build.log"; fail "cmake build ($1)"; }
  "$build/presence_cmake_demo" | tee "$build.out"
  grep -q '^users=1 viewers=1$' "$build.out" || fail "the CMake program ($1) printed something else"
}
cmake_project shared OFF
readelf -d "$scratch/c/cmake-shared/presence_cmake_demo" | grep -q "NEEDED.*\[$SONAME\]" \
  || fail "the shared CMake build does not need $SONAME"
cmake_project static ON
readelf -d "$scratch/c/cmake-static/presence_cmake_demo" | grep -q 'NEEDED.*libpresence' \
  && fail "the static CMake build still needs libpresence"
say "  CMake program: shared $(size "$scratch/c/cmake-shared/presence_cmake_demo") bytes, static $(size "$scratch/c/cmake-static/presence_cmake_demo") bytes"
# A version request: 0.<minor> is met, another minor is refused (no ABI promise before 1.0).
printf 'cmake_minimum_required(VERSION 3.16)\nproject(v C)\nfind_package(presence %s REQUIRED)\n' \
  "${VERSION%.*}" > "$scratch/c/CMakeLists.txt"
cmake -S "$scratch/c" -B "$scratch/c/v-ok" -DCMAKE_PREFIX_PATH="$sdk" > /dev/null 2>&1 \
  || fail "find_package(presence ${VERSION%.*}) was refused"
major=${VERSION%%.*}
rest=${VERSION#*.}
printf 'cmake_minimum_required(VERSION 3.16)\nproject(v C)\nfind_package(presence %s.%s REQUIRED)\n' \
  "$major" "$((${rest%%.*} + 1))" > "$scratch/c/CMakeLists.txt"
if cmake -S "$scratch/c" -B "$scratch/c/v-bad" -DCMAKE_PREFIX_PATH="$sdk" > /dev/null 2>&1; then
  fail "find_package(presence $major.$((${rest%%.*} + 1))) accepted $VERSION"
fi

# --- The READMEs' code blocks, against these artifacts -----------------------------------
DIST_DIR=$DIST_DIR SNIPPET_PYTHON=$scratch/py/venv/bin/python SNIPPET_NODE_PROJECT=$scratch/node NODE=$NODE \
  "$PYTHON3" "$ROOT/tests/snippets/run.py" --work "$scratch/snippets" \
  "$ROOT/README.md" "$ROOT/bindings/python/README.md" "$ROOT/bindings/node/README.md"
for app in app app-static; do
  bin=$scratch/snippets/$(echo "${ROOT#/}/README.md" | tr / _)/$app
  [ -x "$bin" ] || fail "the README's C build did not produce $app"
  say "  README C program ($app): $(size "$bin") bytes ($(mib "$(size "$bin")"))"
done

if [ -s "$scratch/rust-calls.log" ]; then
  cat "$scratch/rust-calls.log"
  fail "something called the Rust toolchain"
fi
say "no Rust toolchain was called ($(cat "$scratch/rust-probes.log" 2>/dev/null | wc -l) \`--version\` probes, from pip's User-Agent)"

# --- The sdist builds from source (toolchain back on PATH) -------------------------------
export PATH=$DIST_VENV/bin:$REAL_PATH  # maturin, for the build without isolation
say "sdist: building a wheel from $(basename "$SDIST") with cargo"
# With the system C compiler and linker, as a user's pip runs it, but in the dev profile:
# that the archive is complete and compiles is what this checks (the optimized code of the
# same sources is the manylinux wheel above). Nothing of the zig-linked wheel's build can be
# reused (other linker, other C compiler), and an optimized build of the whole dependency
# tree again cost about twice the CPU time of this one.
CARGO_TARGET_DIR=$PY_CARGO_DIR MATURIN_PEP517_ARGS="--profile dev" "$DIST_VENV/bin/pip" wheel --quiet --disable-pip-version-check \
  --no-deps --no-build-isolation -w "$scratch/sdist-wheel" "$SDIST"
"$PYTHON3" -m venv "$scratch/sdist-venv"
"$scratch/sdist-venv/bin/pip" install --quiet --disable-pip-version-check "$scratch"/sdist-wheel/*.whl
(cd "$scratch" && "$scratch/sdist-venv/bin/python" -c '
import presence_engine as pe
e = pe.Engine(format="phoenix")
e.track("room", 1, key="alice")
assert "alice" in e.poll_diff()[0]["payload"]["joins"]
print("sdist wheel:", pe.__version__)')
say "test-dist: all artifacts install and run without a Rust toolchain (report: $REPORT)"
