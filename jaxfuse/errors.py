"""The exception type for problems a user can fix, and how it is worded.

A :class:`JaxfuseError` carries the file at fault, the problem and, where
there is one, a hint: how to fix it. The library words a problem for any
caller; the commands (:mod:`jaxfuse.cli`) word the settings and hints it
names as command-line flags:

    >>> e = JaxfuseError("runs/x/checkpoints", "already holds a training run", hint="resume")
    >>> str(e)
    'runs/x/checkpoints: already holds a training run; pass resume=True to continue it or overwrite=True to start again'
    >>> from jaxfuse import cli
    >>> cli.describe(e)
    'runs/x/checkpoints: already holds a training run; pass --resume to continue it or --overwrite to start again'
    >>> e = JaxfuseError(None, "{steps} must be a positive integer, got 0", settings=("steps",))
    >>> str(e), cli.describe(e)
    ('steps must be a positive integer, got 0', '--steps must be a positive integer, got 0')
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

HINTS: dict[str, str] = {
    "overwrite": "pass overwrite=True to replace it",
    "resume": "pass resume=True to continue it or overwrite=True to start again",
    "restart": "pass overwrite=True to start again",
    "continue": "continue with resume=True",
}
"""The hints by key, as the library words them (the commands word them in :data:`jaxfuse.cli.HINTS`)."""


class JaxfuseError(Exception):
    """An input problem a user can fix: the message names the file and the problem.

    Args:
      path: the file or folder at fault, or None.
      problem: what is wrong. A setting the caller chose is written
        ``{name}`` (its parameter name: ``{steps}``, ``{workdir}``) and
        listed in ``settings``; the library shows it as the name, the
        commands as the flag (``--steps``).
      hint: how to fix it, if there is a way: a key of :data:`HINTS`
        (``"overwrite"``, ``"resume"``, ``"restart"``, ``"continue"``) or a
        short free text, which may name settings as ``{name}`` too.
      settings: the names written ``{name}`` in ``problem`` and ``hint``.

    Attributes:
      path: ``str(path)`` or None.
      problem: the problem with the settings by name, without the hint.
      hint: as given.
      settings: as given, a tuple.

    The commands print ``error: <message>`` (:func:`jaxfuse.cli.describe`)
    and exit with status 2 instead of a traceback.
    """

    def __init__(self, path, problem: str, *, hint: str | None = None,
                 settings: Iterable[str] = ()):
        self.path = str(path) if path is not None else None
        self.template = problem
        self.hint = hint
        self.settings = tuple(settings)
        message = self.describe()
        super().__init__(message)
        # A subclass that is also an ImportError (torch_io.TorchMissingError) gets
        # ImportError.__init__, which resets ``path`` to None: set it again.
        self.path = str(path) if path is not None else None

    @property
    def problem(self) -> str:
        return self._fill(self.template, str)

    def describe(self, *, name: Callable[[str], str] = str,
                 hints: Mapping[str, str] | None = None) -> str:
        """The whole message, ``path: problem; hint``.

        Args:
          name: how to write a setting (default: its name).
          hints: the wording of hint keys (default :data:`HINTS`); a hint
            that is not a key is free text, used as it is.
        """
        text = self._fill(self.template, name)
        if self.hint:
            wording = (HINTS if hints is None else hints).get(self.hint, self.hint)
            text += "; " + self._fill(wording, name)
        return f"{self.path}: {text}" if self.path else text

    def _fill(self, text: str, name: Callable[[str], str]) -> str:
        for s in self.settings:
            text = text.replace("{" + s + "}", name(s))
        return text

    def __reduce__(self):  # picklable with its keyword arguments
        return (_rebuild, (self.path, self.template, self.hint, self.settings, type(self)))


def _rebuild(path, template, hint, settings, cls=JaxfuseError):
    return cls(path, template, hint=hint, settings=settings)


class Interrupted(JaxfuseError):
    """The user stopped the work (Ctrl-C); the message says what was kept.

    The commands exit with status 130 (:data:`jaxfuse.cli.EXIT_INTERRUPTED`).
    """
