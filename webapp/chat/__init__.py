"""Chat with a study assistant: conversations streamed over websockets, and "explain my mistake"."""
