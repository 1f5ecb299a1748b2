"""FilesystemDriver: objects as plain files under a root directory, exactly where Distribution keeps them.

Key ``a/b/c`` is the file ``root/a/b/c``, so the tree under root is byte for byte CNCF Distribution's
layout and ``rootdirectory: root`` in a Distribution config serves it (and the other way round).

Keys pass the contract's checks (``storage/driver.py``) plus one rule of this driver's own: the temp area
under root is never a key.

Everything trustyard writes but has not published lives under ``root/.trustyard-tmp/`` (temp files of
atomic writes, one staging directory per segmented upload under ``uploads/``): one directory on the same filesystem,
so ``os.replace`` publishes atomically; Distribution only walks ``docker/``, and ``list`` never shows it.
All blocking I/O runs in worker threads, in 1 MiB blocks, so memory stays constant for any object size.
Streamed bodies are written past the page cache where the filesystem allows it (``direct_io.py``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import itertools
import os
import re
import shutil
import stat as stat_module
import sys
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import BinaryIO, TypeVar

from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.storage import driver
from trustyard.storage.direct_io import DirectAppender
from trustyard.storage.driver import ObjectInfo, Part, UploadState, check_range

T = TypeVar("T")

#: The one directory under root that is not keys: temp files and upload staging.
TEMP_DIR = ".trustyard-tmp"
_KEY_FILE = "key"  # in an upload's staging directory: the key the upload will complete to
_UPLOADS = "uploads"
_BLOCK = 1024 * 1024
_LIST_BATCH = 1000
_TOKEN = re.compile(r"[0-9a-f]{32}")
# A concurrent delete may prune a directory between our mkdir and os.replace; that many tries is plenty.
_REPLACE_TRIES = 5
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def check_key(key: str) -> str:
    """The contract's key check, plus this driver's own rule: the temp area under root is never a key."""
    if key.split("/", 1)[0] == TEMP_DIR:
        raise ValueError(f"invalid storage key {key[:200]!r}")
    return driver.check_key(key)


def check_prefix(prefix: str) -> str:
    prefix = driver.check_prefix(prefix)
    return check_key(prefix) if prefix else ""


class FilesystemDriver:
    name = "filesystem"
    min_part_size = 1
    max_part_size = 5 * 1024**3

    def __init__(self, root: str | Path, *, direct_io: bool = True) -> None:
        """``direct_io``: write streamed bodies past the page cache where the filesystem allows it
        (``direct_io.py``; the ``directio`` parameter)."""
        self.root = Path(root).absolute()
        self.direct_io = direct_io
        self._tmp = self.root / TEMP_DIR
        self._uploads = self._tmp / _UPLOADS

    # -- reading -----------------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = await self._io(partial(os.stat, path), missing=key)
        except ObjectNotFound:
            return None
        if not stat_module.S_ISREG(st.st_mode):
            return None
        return ObjectInfo(key, st.st_size, st.st_mtime)

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        check_range(offset, length)
        file = await self._io(partial(_open_at, path, offset), missing=key)
        try:
            remaining = length
            while remaining is None or remaining > 0:
                block = await self._io(partial(file.read, _BLOCK if remaining is None else min(_BLOCK, remaining)))
                if not block:
                    break
                if remaining is not None:
                    remaining -= len(block)
                yield block
        finally:
            file.close()

    async def get(self, key: str) -> bytes:
        return await self._io(partial(self._path(key).read_bytes), missing=key)

    def list(self, prefix: str) -> AsyncIterator[str]:
        return self._list(check_prefix(prefix))

    async def _list(self, prefix: str) -> AsyncIterator[str]:
        # The walk is a generator advanced in worker threads a batch at a time: constant memory, any tree.
        walk = self._walk(prefix)
        while True:
            batch = await self._io(partial(_take, walk, _LIST_BATCH))
            for key in batch:
                yield key
            if len(batch) < _LIST_BATCH:
                return

    def local_path(self, key: str) -> str | None:
        path = self._path(key)
        return str(path) if path.is_file() else None

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        return None

    # -- writing -----------------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        await self._io(partial(self._put_sync, target, data))

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self._path(key)
        file, temp = await self._io(self._new_appender)
        try:
            size = await self._copy_in(file, chunks)
            await self._io(partial(self._publish, file, temp, target))
        except BaseException:
            # Synchronous on purpose: this also runs on cancellation, where awaiting a thread is not reliable.
            file.close()
            _unlink_quietly(temp)
            raise
        return size

    async def delete(self, key: str) -> None:
        await self._io(partial(self._delete_sync, self._path(key)))

    async def delete_prefix(self, prefix: str) -> None:
        await self._io(partial(self._delete_prefix_sync, check_prefix(prefix)))

    async def move(self, source: str, destination: str) -> None:
        await self._io(partial(self._move_sync, self._path(source), self._path(destination)))

    # -- segmented uploads: the token names a staging directory uploads/<token>/ -------------------------
    # The filesystem can append, so a PATCH appends to the file the previous PATCH wrote (instead of a file
    # per part that the final PUT copies into one): a chunked push writes every byte once, and a completion
    # whose parts all sit in one file renames it into place. Each staging file is named ``o<start>.<etag>``:
    # its first byte is byte ``start`` of the upload, and every byte in it sits at its upload offset, so a
    # part is read back from its file at ``part.offset - start``. Appends happen only under an exclusive
    # ``flock`` on the file and only when the file ends exactly where the part begins; a failed append is
    # truncated away before the lock is released. So the bytes behind a recorded part are never rewritten:
    # a racing attempt at the same part finds the file locked or longer, writes a file of its own, and the
    # caller records one of the two etags (the other's bytes are never read). Files of older versions
    # (``<number>.<etag>``, one part each) still complete.

    async def start_upload(self, key: str) -> UploadState:
        check_key(key)
        token = uuid.uuid4().hex
        await self._io(partial(self._start_sync, self._uploads / token, key))
        return UploadState(key, token)

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        if number < 1 or offset < 0:
            raise ValueError(f"invalid part {number} at offset {offset}")
        staging = self._staging(upload)
        opening = partial(_open_appendable, staging, offset, direct=self.direct_io)
        file, etag, end = await self._io(opening, missing=f"upload {upload.token}")
        try:
            size = await self._copy_in(file, chunks, flush=True)
        except BaseException:
            # Take back exactly what this attempt appended (synchronously, see write()), under the lock.
            with contextlib.suppress(OSError):
                file.flush()
            with contextlib.suppress(OSError):
                os.ftruncate(file.fileno(), end)
            file.close()
            raise
        finally:
            if not file.closed:
                file.close()  # releases the flock
        return Part(number, offset, size, etag)

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part], key: str | None = None) -> None:
        staging = self._staging(upload)
        target = self._path(upload.key if key is None else key)
        expected = 0
        for number, part in enumerate(parts, start=1):
            if part.number != number or part.offset != expected or not _TOKEN.fullmatch(part.etag):
                raise StorageUnavailable(
                    f"filesystem: upload {upload.token}: part {part.number} at offset {part.offset} does not "
                    f"follow the previous parts (expected part {number} at offset {expected})"
                )
            expected += part.size
        durable = key is not None and key != upload.key  # see _complete_sync
        await self._io(partial(self._complete_sync, staging, parts, target, durable))

    async def abort_upload(self, upload: UploadState) -> None:
        staging = self._staging(upload)
        await self._io(partial(_remove, staging))

    async def sweep_staging(self, recorded: Mapping[str, Collection[str]]) -> int:
        return await self._io(partial(self._sweep_sync, recorded))

    async def open_uploads(self, started_before: float) -> AsyncIterator[UploadState]:
        for state in await self._io(partial(self._open_uploads_sync, started_before)):
            yield state

    def _open_uploads_sync(self, started_before: float) -> builtins.list[UploadState]:
        found = []
        try:
            entries = list(os.scandir(self._uploads))
        except FileNotFoundError:
            return []
        for entry in entries:
            key_file = Path(entry.path, _KEY_FILE)
            try:
                began = key_file.stat().st_mtime
                key = key_file.read_text()
            except FileNotFoundError:
                continue  # completed or aborted meanwhile, or not ours
            if _TOKEN.fullmatch(entry.name) and began < started_before:
                found.append(UploadState(key, entry.name))
        return found

    async def close(self) -> None:
        pass

    # -- helpers (the *_sync ones run in worker threads) ---------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _staging(self, upload: UploadState) -> Path:
        check_key(upload.key)
        if not _TOKEN.fullmatch(upload.token):
            raise ValueError(f"invalid upload token {upload.token[:100]!r}")
        return self._uploads / upload.token

    async def _io(self, call: Callable[[], T], missing: str | None = None) -> T:
        """Run ``call`` in a thread; "not found" becomes ObjectNotFound when ``missing`` names the object."""
        try:
            return await asyncio.to_thread(call)
        except _MISSING as exc:
            if missing is None:
                raise self._unavailable(exc) from exc
            raise ObjectNotFound(f"filesystem: {missing} not found") from None
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: OSError) -> StorageUnavailable:
        where = os.path.relpath(exc.filename, self.root) if exc.filename else "?"
        return StorageUnavailable(f"filesystem: {exc.strerror or exc} ({where})")

    async def _copy_in(self, file: DirectAppender, chunks: AsyncIterable[bytes], *, flush: bool = False) -> int:
        """Append ``chunks`` to ``file`` in blocks of about 1 MiB; the number of bytes. With ``flush``, the
        last block's write flushes the file too (one trip to a thread, not two, for a small body)."""
        size = 0
        buffer = bytearray()
        async for chunk in chunks:
            size += len(chunk)
            if not buffer and len(chunk) >= _BLOCK:
                await self._io(partial(file.write, chunk))
                continue
            buffer += chunk
            if len(buffer) >= _BLOCK:
                await self._io(partial(file.write, buffer))
                buffer = bytearray()
        if buffer or flush:
            await self._io(partial(_write_out, file, buffer, flush))
        return size

    def _start_sync(self, staging: Path, key: str) -> None:
        staging.mkdir(parents=True)
        (staging / _KEY_FILE).write_text(key)  # for open_uploads

    def _new_temp(self) -> tuple[BinaryIO, Path]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        temp = self._tmp / uuid.uuid4().hex
        return open(temp, "xb"), temp  # closed by the caller, in every path

    def _new_appender(self) -> tuple[DirectAppender, Path]:
        """A temp file for a streamed object, written past the page cache where it can be (``direct_io.py``)."""
        file, temp = self._new_temp()
        try:
            return DirectAppender(file, temp, 0, direct=self.direct_io), temp
        except BaseException:
            file.close()
            _unlink_quietly(temp)
            raise

    def _publish(self, file: BinaryIO | DirectAppender, temp: Path, target: Path) -> None:
        file.flush()
        os.fsync(file.fileno())
        file.close()
        self._replace(temp, target)

    def _put_sync(self, target: Path, data: bytes) -> None:
        file, temp = self._new_temp()
        try:
            file.write(data)
            self._publish(file, temp, target)
        except BaseException:
            file.close()
            _unlink_quietly(temp)
            raise

    def _replace(self, source: Path, target: Path, *, durable: bool = True) -> None:
        """``os.replace`` into place (making parents), then fsync the directory so the rename is durable;
        without ``durable``, no fsync: for a rename the next step renames again (and fsyncs there)."""
        for attempt in range(_REPLACE_TRIES):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
                break
            except FileNotFoundError:
                # Either the source is gone (a real error) or another request's ``_prune`` removed a parent that
                # had just become empty, while this one was making the path (between ``mkdir`` of one level and
                # the next) or before the rename: try again.
                if not os.path.lexists(source) or attempt == _REPLACE_TRIES - 1:
                    raise
        if durable:
            _fsync_dir(target.parent)

    def _delete_sync(self, path: Path) -> None:
        try:
            path.unlink()
        except _MISSING:
            return
        self._prune(path.parent)

    def _delete_prefix_sync(self, prefix: str) -> None:
        if not prefix:
            if self.root.is_dir():
                with os.scandir(self.root) as entries:
                    for entry in entries:
                        if entry.name != TEMP_DIR:
                            _remove(Path(entry.path))
            return
        top = self.root / prefix
        if top.is_dir() and not top.is_symlink():
            _rmtree(top)
            self._prune(top.parent)

    def _move_sync(self, source: Path, target: Path) -> None:
        # Checked here rather than mapped from os.replace, whose "not found" may be about the target's parent.
        if not _is_file(source):
            raise ObjectNotFound(f"filesystem: {source.relative_to(self.root)} not found")
        self._replace(source, target)
        self._prune(source.parent)

    def _prune(self, directory: Path) -> None:
        """Remove now-empty directories from ``directory`` up to (not including) root."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (or already gone, or not ours): stop here
            directory = directory.parent

    def _walk(self, prefix: str) -> Iterator[str]:
        top = self.root / prefix if prefix else self.root
        if not top.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(top, onerror=_raise_unless_missing):
            if Path(dirpath) == self.root and TEMP_DIR in dirnames:
                dirnames.remove(TEMP_DIR)
            dirnames.sort()
            for filename in sorted(filenames):
                yield os.path.relpath(os.path.join(dirpath, filename), self.root).replace(os.sep, "/")

    def _complete_sync(self, staging: Path, parts: builtins.list[Part], target: Path, durable: bool) -> None:
        # The assembled file's bytes are fsynced here: the blob must be durable before the index names it,
        # and a later ``move`` into ``blobs/`` only renames. The rename into ``target`` is made durable only
        # when asked (``complete_upload``): into the upload's own key (under ``_uploads/``), nothing records
        # that name, the publishing move renames the file again and fsyncs the directory it lands in, and a
        # crash in between leaves at worst staging bytes, which the sweep of interrupted uploads and garbage
        # collection remove.
        if not staging.is_dir():
            raise ObjectNotFound(f"filesystem: upload {staging.name} not found")
        files = _staging_files(staging)
        pieces: list[tuple[Path, int, Part]] = []  # (file, position of the part in it, part)
        for part in parts:
            path, start = files.get(part.etag, (None, 0))
            if path is not None and start < 0:  # a file of an older version: one part, numbered
                path, start = (path, part.offset) if path.name.startswith(f"{part.number}.") else (None, 0)
            if path is None or start > part.offset or _size(path) < part.offset - start + part.size:
                raise StorageUnavailable(f"filesystem: upload {staging.name}: part {part.number} is missing or short")
            pieces.append((path, part.offset - start, part))
        total = sum(part.size for part in parts)
        only = {path for path, _, _ in pieces}
        if len(only) == 1 and pieces[0][1] == 0:
            # The common case (one PATCH, a monolithic PUT, or PATCHes appended to one file): that file
            # becomes the object, without a copy. Locked, so an attempt still appending to it (a racing
            # PATCH whose session is gone) finishes first; what it added past the parts is cut off.
            assembled = only.pop()
            with open(assembled, "r+b") as file:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX)
                if os.fstat(file.fileno()).st_size != total:
                    os.ftruncate(file.fileno(), total)
                os.fsync(file.fileno())
                self._replace(assembled, target, durable=durable)
        elif not pieces:
            assembled = staging / "assembled"
            with open(assembled, "wb") as out:
                os.fsync(out.fileno())
            self._replace(assembled, target, durable=durable)
        else:
            assembled = staging / "assembled"
            with open(assembled, "wb") as out:
                for path, position, part in pieces:
                    with open(path, "rb") as source:
                        source.seek(position)
                        _copy_range(source, out, part.size)
                out.flush()
                os.fsync(out.fileno())
            self._replace(assembled, target, durable=durable)
        _rmtree(staging)

    def _sweep_sync(self, recorded: Mapping[str, Collection[str]]) -> int:
        """Temp files of atomic writes, staging directories of sessions that are gone, and part files no
        session recorded (a PATCH cut off by a crash): none of them can ever be published."""
        if not self._tmp.is_dir():
            return 0
        removed = 0
        for entry in self._tmp.iterdir():
            if entry.name != _UPLOADS:
                removed += _count_files(entry)
                _remove(entry)
        if not self._uploads.is_dir():
            return removed
        for staging in self._uploads.iterdir():
            etags = recorded.get(staging.name)
            if etags is None:
                removed += _count_files(staging)
                _remove(staging)
                continue
            for part in staging.iterdir():
                if part.name != _KEY_FILE and part.name.partition(".")[2] not in etags:
                    removed += _count_files(part)
                    _remove(part)
        return removed


def _count_files(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(1 for p in path.rglob("*") if not p.is_dir())
    return 1


def _staging_files(staging: Path) -> dict[str, tuple[Path, int]]:
    """etag -> (file, upload offset of its first byte) of a staging directory; -1: an older version's
    ``<number>.<etag>`` file, which holds exactly one part."""
    found: dict[str, tuple[Path, int]] = {}
    with os.scandir(staging) as entries:
        for entry in entries:
            prefix, _, etag = entry.name.partition(".")
            if not _TOKEN.fullmatch(etag):
                continue
            if prefix.startswith("o") and prefix[1:].isdigit():
                found[etag] = (Path(entry.path), int(prefix[1:]))
            elif prefix.isdigit():
                found[etag] = (Path(entry.path), -1)
    return found


def _open_appendable(staging: Path, offset: int, *, direct: bool) -> tuple[DirectAppender, str, int]:
    """A staging file to write the part starting at upload byte ``offset`` into, locked (``flock``) and
    positioned at its end: a file that ends exactly at ``offset`` and that no other attempt holds, else a new
    file ``o<offset>.<etag>``. Returns the file, its etag and the position the part starts at in it."""
    if not staging.is_dir():
        raise FileNotFoundError(staging)
    for etag, (path, start) in _staging_files(staging).items():
        if start < 0 or start > offset:
            continue
        try:
            existing: BinaryIO = open(path, "r+b")  # noqa: SIM115 -- returned to the caller, which closes it
        except _MISSING:
            continue  # completed, or assembled, meanwhile
        try:
            fcntl.flock(existing.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Under the lock: still the file of that name (not renamed into place by a completion), and it
            # ends where this part begins.
            info = os.fstat(existing.fileno())
            if info.st_size == offset - start and os.stat(path).st_ino == info.st_ino:
                existing.seek(0, os.SEEK_END)
                return DirectAppender(existing, path, offset - start, direct=direct), etag, offset - start
        except (BlockingIOError, *_MISSING):
            pass
        except BaseException:
            existing.close()
            raise
        existing.close()
    etag = uuid.uuid4().hex
    path = staging / f"o{offset}.{etag}"
    file: BinaryIO = open(path, "xb")  # noqa: SIM115 -- returned to the caller, which closes it
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # new: nobody else can hold it yet
        return DirectAppender(file, path, 0, direct=direct), etag, 0
    except BaseException:
        file.close()
        raise


def _write_out(file: DirectAppender, data: bytes | bytearray, flush: bool) -> None:
    if data:
        file.write(data)
    if flush:
        file.flush()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except _MISSING:
        return -1


def _open_at(path: Path, offset: int) -> BinaryIO:
    file = open(path, "rb")  # noqa: SIM115 -- returned to the caller, which closes it
    file.seek(offset)
    return file


def _is_file(path: Path) -> bool:
    try:
        return stat_module.S_ISREG(path.stat().st_mode)
    except _MISSING:
        return False


def _copy_range(source: BinaryIO, destination: BinaryIO, size: int) -> None:
    """Append ``size`` bytes of ``source`` to ``destination`` in the kernel where it can (copy_file_range)."""
    copied = 0
    while copied < size:
        try:
            sent = os.copy_file_range(source.fileno(), destination.fileno(), size - copied)
        except OSError:
            shutil.copyfileobj(source, destination, _BLOCK)
            return
        if sent == 0:
            break
        copied += sent


def _take(iterator: Iterator[str], count: int) -> list[str]:
    return list(itertools.islice(iterator, count))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _raise_unless_missing(exc: BaseException) -> None:
    # Something vanishing under a walk or rmtree is a concurrent delete, not a failure.
    if not isinstance(exc, FileNotFoundError):
        raise exc


def _rmtree(path: Path) -> None:
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=lambda _f, _p, exc: _raise_unless_missing(exc))
    else:
        shutil.rmtree(path, onerror=lambda _f, _p, info: _raise_unless_missing(info[1]))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        _rmtree(path)
    else:
        _unlink_quietly(path)
