"""The one exception type for mistakes a user can fix (bad config values, missing files).

The CLI prints these as a single line, without a traceback; anything else is a bug and
keeps its traceback.
"""


class UserError(ValueError):
    """A problem with the user's input; its message says what is wrong and what is allowed."""
