"""Where the lake's bytes live: local disk now, S3 behind the same interface later."""

from lagoa.storage.base import Storage, open_storage

__all__ = ["Storage", "open_storage"]
