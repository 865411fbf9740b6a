"""Inference: llama.cpp through llama-cpp-python, one model per process, GPU offload when built for it."""
