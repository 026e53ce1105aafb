"""Writing tensors as a safetensors file, with a failed write reported as an OSError;
the name to read one by.

safetensors reports a write that the system refused (a full disk, a quota) as a
SafetensorError, which is not an OSError: the code that goes on without a file it could not
write (a cache entry is used for the session and computed again next time) catches OSError,
and a full disk crashed it instead. `save_tensors` raises those failures as the OSError
they are (errno ENOSPC for a full disk, else EIO), with safetensors' own words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_IO_ERROR = "I/O error: "  # how safetensors words a failure of the system's write
# Rust's "(os error 28)", and the temporary file safetensors names after it
_OS_ERROR_CODE = re.compile(r"\s*\(os error (-?\d+)\)(\s+at path \".*\")?\s*$")
# The system's words for a full disk: POSIX (ENOSPC), Windows (ERROR_DISK_FULL and
# ERROR_HANDLE_DISK_FULL).
_NO_SPACE = ("no space left", "not enough space", "disk is full")


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
                 metadata: dict[str, str] | None = None) -> None:
    """safetensors.torch.save_file, but a write the system refused raises OSError. Other
    errors (tensors safetensors cannot store) pass unchanged. Not atomic by itself: write
    into `paths.atomic_path`'s temporary file, which is removed when this raises."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(dict(tensors), os.fspath(path), metadata=metadata)
    except SafetensorError as e:
        error = _as_os_error(str(e))
        if error is None:
            raise
        raise error from e


def _as_os_error(message: str) -> OSError | None:
    """The OSError a safetensors I/O failure stands for, or None for any other failure."""
    _, found, detail = message.partition(_IO_ERROR)
    if not found:
        return None
    code = _OS_ERROR_CODE.search(detail)
    detail = _OS_ERROR_CODE.sub("", detail).strip() or message
    full = any(words in detail.lower() for words in _NO_SPACE)
    # the code is an errno on POSIX; on Windows it is a system error code, not an errno
    posix_code = int(code.group(1)) if code and os.name == "posix" else None
    number = errno.ENOSPC if full else posix_code or errno.EIO
    return OSError(number, detail)


@contextlib.contextmanager
def readable_name(path: str | os.PathLike) -> Iterator[str]:
    """The name to give safetensors' readers for `path`. They take only UTF-8 names ("Path
    ... is not valid UTF-8", which read as a damaged file), where a Linux file name is any
    bytes: such a file is opened here and named by its descriptor (/proc/self/fd/N) while
    it is read. (Writing takes any name.)"""
    name = os.fsdecode(os.fspath(path))
    try:
        name.encode("utf-8")
        utf8 = True
    except UnicodeEncodeError:
        utf8 = False
    # (not yielded in the except block: the reader's own errors were chained to it, and
    # their tracebacks began with "During handling of … UnicodeEncodeError")
    if utf8 or not os.path.isdir("/proc/self/fd"):
        yield name
        return
    fd = os.open(name, os.O_RDONLY)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
