"""Which recording the transcription endpoint is sent: what the model heard, never the file as it came.

The file as it came carries what the model never hears (a voice memo's location, tags, comments, a second
stream, bytes past the end, a length that lies), and the endpoint would decode, bill and keep all of it.
What goes instead is the audio the codecs decoded, within their cap: a voice note's Opus packets rebuilt as an
OGG/Opus file with no comments (WavAudio.voice_ogg, a tenth of the WAV, so the turn's WAV is needed only until
the reply's request is written), else the WAV itself. Nothing is written anywhere.
"""

from __future__ import annotations

from parley.audio.wav import WavAudio

Upload = tuple[str, bytes, str]
"""What the openai SDK takes as a file: (name, bytes, content type)."""


def for_transcription(wav: WavAudio) -> Upload:
    """The file to send the transcription endpoint: the rebuilt voice note when the decoding made one, else
    the WAV the model hears."""
    if wav.voice_ogg is not None:
        return "voice.ogg", wav.voice_ogg, "audio/ogg"
    return "voice.wav", wav.data, "audio/wav"
