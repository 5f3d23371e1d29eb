"""Knowledge tasks: the team's documents (read and chunked so far; retrieval and the `rag` kind are issue 16's rest)."""
