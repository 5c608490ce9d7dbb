#!/usr/bin/env bash
# Set up a Debian/Ubuntu machine for Clawgress: the Debian packages listed in
# tools/debian-packages.txt and a virtual environment at .venv with the project
# installed (editable, with its dev extras). Idempotent, and quick when nothing is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'setup: %s\n' "$*" >&2; }

mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' tools/debian-packages.txt)
missing=()
for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    if [[ $EUID -ne 0 ]]; then
        say "missing Debian packages: ${missing[*]}; run this as root (or install them) first"
        exit 2
    fi
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The distribution's interpreter, so that Debian's Python bindings (libnftables) match it.
python=/usr/bin/python3
if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv with $($python --version)"
    $python -m venv .venv
fi

# Reinstall only when the project's metadata changed since the last set-up.
stamp=.venv/.clawgress-setup
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    say "installing the project and its dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$want" >"$stamp"
fi
# libnftables' Python bindings are not on PyPI: link the distribution's package (pure
# Python over ctypes) into the virtual environment.
site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [[ ! -e "$site/nftables" && -d /usr/lib/python3/dist-packages/nftables ]]; then
    ln -s /usr/lib/python3/dist-packages/nftables "$site/nftables"
fi
# The DLP scanner's modules compiled with mypyc (gatewayd/compiled.py): again only when
# their sources changed. If compiling fails, they run as Python (and a test says so).
if ! .venv/bin/python -m tools.native; then
    say "the DLP modules could not be compiled: they run as Python (tools/native.py)"
fi
say "ready (.venv: $(.venv/bin/python --version))"
