#!/usr/bin/env bash
# Build llama.cpp's own server and batched bench from the sources llama-cpp-python vendors (the same release the
# project installs), for the continuous-batching benchmark's peer (`make bench BENCH=parallel`). Not a runtime
# dependency: the binaries live in the cache folder only.
#   scripts/build_llama_peer.sh PYTHON   -> prints the folder holding llama-server and llama-batched-bench
set -euo pipefail
PYTHON=${1:?usage: build_llama_peer.sh PYTHON}
VERSION=0.3.36
# The sdist's sha256, as in scripts/install_llama_cpp.sh.
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
OUT=${XDG_CACHE_HOME:-$HOME/.cache}/llmops/llama-peer-$VERSION
# The flags of the CPU wheel (scripts/install_llama_cpp.sh), so the peer runs the same kernels.
ARGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF
      -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
      -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=Release)

if [ -x "$OUT/bin/llama-server" ] && [ -x "$OUT/bin/llama-batched-bench" ]; then
  echo "$OUT/bin"
  exit 0
fi
command -v cmake >/dev/null || { echo "cmake is needed to build the peer (apt-get install cmake)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "llama-cpp-python==$VERSION --hash=sha256:$SDIST_SHA256" > "$work/req.txt"
"$PYTHON" -m pip download --quiet --no-deps --no-binary llama-cpp-python --require-hashes -r "$work/req.txt" -d "$work" >&2
tar -xzf "$work"/llama_cpp_python-"$VERSION".tar.gz -C "$work"
src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp"
echo "building llama-server and llama-batched-bench from $src (several minutes, once)" >&2
cmake -S "$src" -B "$work/build" -G Ninja "${ARGS[@]}" >&2
cmake --build "$work/build" --target llama-server llama-batched-bench -j "${PEER_BUILD_JOBS:-$(nproc)}" >&2
mkdir -p "$OUT/bin"
cp "$work/build/bin/llama-server" "$work/build/bin/llama-batched-bench" "$OUT/bin/"
echo "$OUT/bin"
