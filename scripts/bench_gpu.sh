#!/usr/bin/env bash
# make bench-gpu: on a machine with an NVIDIA GPU, build llama-cpp-python with CUDA into the venv,
# then report tokens/s for 1, 2, 4 and 8 inference worker processes with every layer offloaded,
# next to the CPU figures for the same worker counts, and for 1, 2, 4 and 8 sequences decoded together in one
# process (LLMOPS_INFERENCE_PARALLEL). Results: docs/benchmarks-gpu.md.
#   scripts/bench_gpu.sh [PYTHON]        MODEL=gemma-3-270m WORKERS="1 2 4 8" TOKENS=128 REQUESTS=4
set -euo pipefail
PY=${1:-.venv/bin/python}
MODEL=${MODEL:-gemma-3-270m}
WORKERS=${WORKERS:-1 2 4 8}
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench-gpu: no NVIDIA GPU visible (nvidia-smi)" >&2; exit 2
fi
if ! command -v nvcc >/dev/null; then
  echo "bench-gpu: nvcc not found; the CUDA toolkit is needed to build llama.cpp with -DGGML_CUDA=on" >&2; exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-90} scripts/install_llama_cpp.sh "$PY" cuda
"$PY" -c "import llama_cpp, sys; ok = llama_cpp.llama_supports_gpu_offload(); print('GPU offload supported:', ok); sys.exit(0 if ok else 1)"
# shellcheck disable=SC2086 # WORKERS is a list
"$PY" -m benchmarks.gpu_workers --model "$MODEL" --workers $WORKERS --tokens "${TOKENS:-128}" \
  --requests "${REQUESTS:-4}" --gpu --cpu --out docs/benchmarks-gpu.md
# The same model with its sequences decoded together in one process (continuous batching), appended.
# shellcheck disable=SC2086
"$PY" -m benchmarks.gpu_parallel --model "$MODEL" --sequences $WORKERS --tokens "${TOKENS:-128}" \
  --requests "${REQUESTS:-4}" --gpu --cpu --out docs/benchmarks-gpu.md
echo "written to docs/benchmarks-gpu.md; \`make install\` (LLMOPS_LLAMA_VARIANT=cpu) goes back to the CPU build"
