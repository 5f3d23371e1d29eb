"""Models behind an OpenAI-compatible HTTP endpoint (vLLM, Ollama, hosted APIs), prompted like the local ones."""

from adaptlab.remote.client import ChatClient, RemoteError
from adaptlab.remote.solver import RemoteSolver

__all__ = ["ChatClient", "RemoteError", "RemoteSolver"]
