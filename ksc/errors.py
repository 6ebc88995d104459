"""Exception types raised by ksc.

Every problem a user can cause (a bad mesh, a corrupt ``.ksc`` file, an
impossible option) raises a subclass of :class:`KscError`. The command line
prints such errors as one line and exits non-zero; anything else is a bug.
"""


class KscError(ValueError):
    """Base class of the errors ksc reports to users."""


class KscInputError(KscError):
    """An input mesh or option that ksc cannot encode."""


class KscFormatError(KscError):
    """A ``.ksc`` container that is truncated, corrupt or of an unknown version."""
