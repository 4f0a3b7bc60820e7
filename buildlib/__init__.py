"""What build.py is made of: the emulator driver and the interpreter bundler."""


class BuildError(Exception):
    """A build step failed for a reason the user can act on."""
