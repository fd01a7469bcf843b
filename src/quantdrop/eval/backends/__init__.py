"""Backends: chat messages in, a `Completion` out (see quantdrop.eval.types.Backend).

`openai_compat.OpenAICompatBackend`: any OpenAI-compatible server(s) over HTTP (llama-server, vLLM,
SGLang, llama-cpp-python's server, hosted APIs). `llama_cpp.LlamaCppBackend`: a GGUF in-process.
"""
