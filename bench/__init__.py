"""Parley's benchmark suite: `python -m bench` (see the README's "Benchmarks" section).

It starts the test lab's stand-ins of the Bot API and the OpenAI API in this process and the real
`parley run` as a separate process against them, so the figures are the application's own — real
python-telegram-bot, openai SDK, ffmpeg and SQLite — with the network reduced to loopback.
"""
