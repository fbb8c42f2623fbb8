"""The one error the design pipeline raises: a readable refusal of the file or its settings."""

from __future__ import annotations

from laserd.errors import LaserdError


class DesignError(LaserdError):
    """The design cannot be read or planned as asked (bad file, off the bed, nothing to burn).

    The message is for the person who uploaded the file: what is wrong and, where there is
    one, what to do about it.
    """

    status, code, default_message = 422, "invalid_design", "The design cannot be processed."
