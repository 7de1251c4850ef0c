"""The extraction mark alone, without Babel: modules that only declare texts (errors, also loaded in the
codec worker processes) import this and nothing heavier."""


def N_(message: str) -> str:
    """Marks a text for the catalogue; it is translated where it is shown (`_(text)`)."""
    return message
