"""Parley in the reader's language: the message catalogue (`catalog`), the shipped locales (`locales`), and
locale-aware numbers, money, dates and durations (`formats`). Import from those modules; this package
itself imports nothing, so a module that only marks texts (`marks.N_`) does not load Babel."""
