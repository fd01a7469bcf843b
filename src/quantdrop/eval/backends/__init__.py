"""Backends: chat messages in, a `Completion` out (see quantdrop.eval.types.Backend).

`openai_compat.OpenAICompatBackend`: any OpenAI-compatible server(s) over HTTP (llama-server, vLLM,
SGLang, llama-cpp-python's server, hosted APIs). `llama_cpp.LlamaCppBackend`: a GGUF in-process.
"""

from __future__ import annotations

from typing import Any


class BackendBase:
    """The open/close half of the Backend contract: `async with backend:` opens it and always closes it;
    `close` runs once however often it is called. Subclasses implement `_open` and `_close`."""

    _closed = False

    async def open(self) -> None:
        """Make the backend ready to answer; what a failed open acquired is released."""
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise

    async def prepare(self, chat: bool = True) -> None:
        """Load what answering needs (nothing, unless the backend holds a model)."""

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._close()

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    async def __aenter__(self) -> Any:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # the names this contract had before open/close
    async def connect(self) -> None:
        await self.open()

    async def aclose(self) -> None:
        await self.close()
