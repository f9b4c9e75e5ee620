#!/usr/bin/env bash
# Create .venv and install stase with everything it needs. Usage: tools/setup.sh [runtime|test]
# "runtime" installs what `stase demo` needs; "test" adds the system packages the tests drive
# (JACK, Ardour, Lua) and the dev extras. System packages are installed only when we are root.
set -euo pipefail
mode=${1:-runtime}
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

# fluidsynth + fluid-soundfont-gm: the sampled General MIDI voices of `stase demo` (FluidR3_GM.sf2)
apt_pkgs=(libportaudio2 libsndfile1 fluidsynth fluid-soundfont-gm)
if [ "$mode" = test ]; then
  apt_pkgs+=(jackd2 lua5.4 ardour xvfb)
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup: not root; make sure these system packages are installed: ${apt_pkgs[*]}"
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
pip="$VENV/bin/python -m pip"
$pip install -q --upgrade pip wheel setuptools
# The CPU build of torch first, so sentence-transformers does not pull a multi-GB CUDA build.
$VENV/bin/python -c "import torch" 2>/dev/null || $pip install -q torch==2.13.0
# llama-cpp-python compiles llama.cpp. Its default build is tuned to the building machine
# (-march=native): on a CPU with AMX (Intel Sapphire Rapids and later) that build crashed in
# ggml_backend_amx_mul_mat on the first decode (seen with 0.3.36, 2026-12-02), and a wheel cached on
# one machine can hold instructions another lacks. So on x86-64 it is built once for AVX2/FMA
# (every x86-64 CPU of the last ten years; a CMAKE_ARGS of the user's replaces these flags), kept
# in a wheel folder named by the version and a hash of the flags.
LLAMA_VERSION=0.3.36
if [ "$(uname -m)" = x86_64 ] && ! $VENV/bin/python -c "import llama_cpp" 2>/dev/null; then
  llama_flags="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF}"
  flags_id=$(printf %s "$llama_flags" | sha256sum | cut -c1-12)
  wheels="${XDG_CACHE_HOME:-$HOME/.cache}/stase/wheels/llama-cpp-python-$LLAMA_VERSION-$flags_id"
  if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "setup: building llama-cpp-python $LLAMA_VERSION with $llama_flags (about 7 min, once)"
    CMAKE_ARGS="$llama_flags" $pip wheel -q --no-deps --no-cache-dir -w "$wheels" "llama-cpp-python==$LLAMA_VERSION"
  fi
  $pip install -q "$wheels"/llama_cpp_python-*.whl
fi
if [ "$mode" = test ]; then
  $pip install -q -e ".[dev,train,ray,agent-train]"   # agent-train: the LoRA smoke test
else
  $pip install -q -e .
fi
# Warm the caches once, at install time rather than inside the first demo: numba compiles its
# kernels (cache=True, kept under __pycache__), the sentence encoder is exported to ONNX, and
# matplotlib builds its font cache. A 4-bar piece exercises every stage of `stase demo`.
warm=$(mktemp -d)
if "$VENV/bin/stase" generate "jazz trio in a small club" -o "$warm" --bars 4 --quiet; then
  echo "setup: caches warm"
else
  echo "setup: warming the caches failed (see above); stase will compile on first use" >&2
fi
rm -rf "$warm"
echo "setup: $mode environment ready in $VENV"
