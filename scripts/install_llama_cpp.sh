#!/usr/bin/env bash
# Install llama-cpp-python into a virtual environment from a wheel built once and cached.
#   scripts/install_llama_cpp.sh PYTHON [cpu|cuda]
# CPU: portable AVX2 build. A native build (-DGGML_NATIVE=ON) enables the AMX matmul path on
# CPUs that have AMX, and that path segfaults on the first decode (ggml_backend_amx_mul_mat).
# CUDA: all layers can be offloaded; CUDA_ARCHITECTURES defaults to 90 (H100/H200).
set -euo pipefail
PYTHON=${1:?usage: install_llama_cpp.sh PYTHON [cpu|cuda]}
VARIANT=${2:-cpu}
VERSION=0.3.36
# sha256 of llama-cpp-python-$VERSION.tar.gz, the only file of that release on PyPI: pip refuses a download with
# another hash. scripts/lock.py (make lock) fails when the index's hash is not this one. The tools the isolated
# build installs (scikit-build-core, cmake, ninja: the sdist's build-system.requires) are not hash-checked.
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/llmops/wheels-$VARIANT
case "$VARIANT" in
  cpu)  ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" ;;
  cuda) ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-90} -DLLAVA_BUILD=OFF" ;;
  *) echo "unknown variant $VARIANT (cpu|cuda)" >&2; exit 2 ;;
esac

installed=$("$PYTHON" -c "import importlib.metadata as m; print(m.version('llama_cpp_python'))" 2>/dev/null || true)
marker=$("$PYTHON" -c "import sys; print(sys.prefix)")/.llama-cpp-variant
if [ "$installed" = "$VERSION" ] && [ "$(cat "$marker" 2>/dev/null)" = "$VARIANT" ]; then
  echo "llama-cpp-python $VERSION ($VARIANT) already installed"
  exit 0
fi

mkdir -p "$CACHE"
wheel=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  echo "building llama-cpp-python $VERSION ($VARIANT) from source; this takes several minutes once, then the wheel is cached in $CACHE"
  req=$(mktemp)
  trap 'rm -f "$req"' EXIT
  echo "llama-cpp-python==$VERSION --hash=sha256:$SDIST_SHA256" > "$req"
  CMAKE_ARGS="$ARGS" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$PYTHON" -m pip wheel --no-deps --no-binary llama-cpp-python --require-hashes -r "$req" -w "$CACHE"
  wheel=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl | head -n1)
  sha256sum "$wheel" | cut -d' ' -f1 > "$wheel.sha256"
fi
# The cached wheel was built here, so no index knows its hash: the one recorded when it was built is checked
# before every install (a wheel cached before hashes were recorded gets its hash recorded now, once).
if [ ! -f "$wheel.sha256" ]; then
  echo "recording the sha256 of $wheel (built before hashes were recorded)"
  sha256sum "$wheel" | cut -d' ' -f1 > "$wheel.sha256"
fi
if ! echo "$(cat "$wheel.sha256")  $wheel" | sha256sum --check --status; then
  echo "$wheel does not have the sha256 recorded when it was built ($wheel.sha256): delete both to rebuild" >&2
  exit 1
fi
"$PYTHON" -m pip install --force-reinstall --no-deps "$wheel"
# Its runtime dependencies (numpy, jinja2, diskcache, typing-extensions). Under `make install` they are already
# installed, hash-checked, from requirements/lock.txt, so this installs nothing; the Dockerfile takes them here.
"$PYTHON" -m pip install "numpy>=1.20" "jinja2>=2.11.3" "diskcache>=5.6.1" "typing-extensions>=4.5"
echo "$VARIANT" > "$marker"
