"""Why the generation engine refuses a request or an adapter change (the server maps each to an HTTP status)."""

class UnknownModelError(LookupError):
    """No served model or adapter has that name."""


class InvalidRequestError(ValueError):
    """The request cannot be served as asked (bad settings, prompt too long for the context)."""


class EngineClosedError(RuntimeError):
    """The engine was closed before the request finished."""


class AdapterNotFoundError(LookupError):
    """No adapter where a load points, or no loaded adapter of the name an unload gives (vLLM answers 404)."""
