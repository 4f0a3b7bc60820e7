"""pylambda: a Python runtime for AWS Lambda's OS-only runtimes (provided.al2023).

The package is the glue between a user's ``handler(event, context)`` and the
Lambda Runtime API. ``pylambda.runtime`` holds the loop; every other module is
one concern the loop leans on (HTTP, context, errors, logging, handler loading,
JSON payloads).
"""

__version__ = "0.1.0"
