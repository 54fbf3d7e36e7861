"""Error tree. Every message says what happened and how to fix it."""

from __future__ import annotations


class TongchengQAError(Exception):
    """Base class for all errors the project raises on purpose."""


class ConfigError(TongchengQAError):
    """A setting is missing or invalid."""


class CorpusError(TongchengQAError):
    """A corpus file could not be read or parsed."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.reason = message


class ModelNotAvailableError(TongchengQAError):
    """A model cannot be loaded or provisioned offline."""


class IndexNotReadyError(TongchengQAError):
    """The index is missing, built with another model, or otherwise unusable."""


class StoreUnavailableError(TongchengQAError):
    """The vector store (e.g. a Chroma server) cannot be reached."""


class NotFoundError(TongchengQAError):
    """Something the caller named (an article, a session) does not exist."""


class ArticleNotFoundError(NotFoundError):
    """An article id is not in the index."""


class BadRequestError(TongchengQAError):
    """The caller's input is invalid (empty question, bad filter, ...)."""
