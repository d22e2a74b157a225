"""pyiceberg's file IO for a lake on local disk, on plain Python files.

pyiceberg's default, ``PyArrowFileIO``, imports pyarrow's dataset module and with it pandas (~0.8 s
measured here) before the first metadata file is read, on every command that opens a table.
Lagoa's data files are read and written by DuckDB; pyiceberg only reads and writes metadata,
manifests and manifest lists, which Python's own files do as fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, cast

from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream

IMPLEMENTATION = f"{__name__}.LocalFileIO"
"""The value of the catalog's ``py-io-impl`` property that selects it."""


def _path(location: str) -> Path:
    return Path(location.removeprefix("file://"))


class LocalFile(InputFile, OutputFile):
    """One file of the lake, to read or to write."""

    def __len__(self) -> int:
        return _path(self.location).stat().st_size

    def exists(self) -> bool:
        return _path(self.location).exists()

    def open(self, seekable: bool = True) -> InputStream:
        return cast(InputStream, _path(self.location).open("rb"))

    def create(self, overwrite: bool = False) -> OutputStream:
        path = _path(self.location)
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x" refuses a file that exists, atomically (pyarrow's check-then-open does not).
        stream: IO[bytes] = path.open("wb" if overwrite else "xb")
        return cast(OutputStream, stream)

    def to_input_file(self) -> LocalFile:
        return self


class LocalFileIO(FileIO):
    """Metadata, manifests and data files at local paths or ``file://`` locations."""

    def new_input(self, location: str) -> LocalFile:
        return LocalFile(location)

    def new_output(self, location: str) -> LocalFile:
        return LocalFile(location)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        os.remove(_path(location if isinstance(location, str) else location.location))
