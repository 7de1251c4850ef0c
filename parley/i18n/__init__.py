"""Parley in the reader's language: the message catalogue, the shipped locales, and locale-aware formats."""

from parley.i18n.catalog import N_, _, current, load_all, ngettext, set_current, using
from parley.i18n.locales import SHIPPED, SOURCE, english_name, native_name, normalise, right_to_left, telegram_code

__all__ = [
    "N_",
    "SHIPPED",
    "SOURCE",
    "_",
    "current",
    "english_name",
    "load_all",
    "native_name",
    "ngettext",
    "normalise",
    "right_to_left",
    "set_current",
    "telegram_code",
    "using",
]
