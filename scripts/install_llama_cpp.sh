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
  CMAKE_ARGS="$ARGS" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$PYTHON" -m pip wheel --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$CACHE"
  wheel=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl | head -n1)
fi
"$PYTHON" -m pip install --force-reinstall --no-deps "$wheel"
# Its runtime dependencies (numpy, jinja2, diskcache, typing-extensions) from the index.
"$PYTHON" -m pip install "numpy>=1.20" "jinja2>=2.11.3" "diskcache>=5.6.1" "typing-extensions>=4.5"
echo "$VARIANT" > "$marker"
