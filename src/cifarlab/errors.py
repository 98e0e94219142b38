"""The one exception type that the command line turns into a clear message and exit code 2."""


class CifarlabError(Exception):
    """Bad input or a failed precondition: the message names the problem and the fix."""
