"""The one exception type the command-line tools turn into a one-line message."""


class JaxfuseError(Exception):
    """An input problem a user can fix: the message names the file and the problem.

    ``fuse.py``, ``train.py`` and ``python -m jaxfuse.evaluate`` print
    ``error: <message>`` and exit with status 2 instead of a traceback.
    """

    def __init__(self, path, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
