"""Errors the user may see. Each carries the short, plain sentence to show in the chat.

Anything that is not a ParleyError is a bug: the user gets a generic apology and the log gets the details.
The sentences are English catalogue entries (`N_`): the edge translates them when it tells the user.
"""

from __future__ import annotations

from collections.abc import Mapping

from parley.i18n.marks import N_


class ParleyError(Exception):
    """`user_message` is the catalogue's English text; `values` fill its placeholders when it is translated
    (numbers are written the reader's way then), so a sentence with a number is still one catalogue entry."""

    user_message = N_("Something went wrong on my side. Please try again.")

    def __init__(
        self, detail: str = "", *, user_message: str | None = None, values: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(detail or self.user_message)
        if user_message is not None:
            self.user_message = user_message
        self.values: dict[str, object] = dict(values or {})


class EmptyMessage(ParleyError):
    user_message = N_("Send me a voice message or some text.")


class AudioError(ParleyError):
    user_message = N_("I couldn't read that audio. Please record the voice message again, or send it as text.")


class AudioTimeout(AudioError):
    user_message = N_("That recording took too long to process. Please try a shorter one.")


class AudioTooLong(AudioTimeout):
    """The audio is longer than the decoder was allowed to go: found out by decoding (or by the container's
    own declaration), whatever length the message claimed."""


class AudioTooLarge(ParleyError):
    user_message = N_("That file is too large.")


class ModelError(ParleyError):
    user_message = N_("I couldn't get an answer from the voice model just now. Please try again in a minute.")


class ModelTimeout(ModelError):
    user_message = N_("The voice model took too long to answer. Please try again in a minute.")


class ModelBusy(ModelError):
    """The model's service refused for load (HTTP 429): busy is the word for it, and only for it."""

    user_message = N_("The voice model is busy right now. Please try again in a minute.")


class ModelUnavailable(ModelError):
    """The model's service failed (a 5xx, a dropped connection, a stream that broke off): not busy, broken."""

    user_message = N_("The voice model had a problem just now. Please try again in a minute.")


class ModelRejected(ModelError):
    user_message = N_("The voice model couldn't handle that message. Please try saying it differently.")


class VoiceTooLong(ParleyError):
    """A voice note longer than PARLEY_MAX_VOICE_SECONDS: refused before any model call (the chat says so)."""

    user_message = N_("That voice message is too long. Please send a shorter one.")

    def __init__(self, seconds: float, limit: float) -> None:
        super().__init__(f"voice note of {seconds:.0f} s, over the {limit:.0f} s limit")
        self.seconds = seconds
        self.limit = limit
