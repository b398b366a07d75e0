"""Reading the organisation's text tables: the encoding (UTF-8, GB18030/GBK, UTF-16) and the separator (comma or
tab) detected, rows streamed with their line numbers."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from readers.text import has_wide, plain
from states.columns import TITLE_ROWS, header_at, is_header
from states.errors import MalformedFile
from states.source import Source

CHUNK = 1 << 20
"""Bytes read at a time: a file is read in pieces, twice (its digest and encoding, then its rows), never whole."""


@dataclass(frozen=True)
class Scanned:
    """What a first pass over a text file finds: its digest, its encoding, whether it holds full-width text, and
    the file's identity (device, inode, size, modification time), by which the second pass knows it is the same."""

    path: str
    sha256: str
    encoding: str
    wide: bool
    identity: tuple[int, int, int, int]


def utf16_without_bom(raw: bytes) -> str | None:
    """"utf-16-le" or "utf-16-be" when `raw` looks like UTF-16 text written without a BOM: in its first bytes,
    many of every other byte are NUL (the high byte of ASCII: ids, digits, separators) and almost none between."""
    head = raw[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    for encoding, highs, lows in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if highs.count(0) >= 0.3 * len(highs) and lows.count(0) * 4 <= highs.count(0):
            return encoding
    return None


def _candidates(head: bytes) -> tuple[str, ...]:
    """UTF-16 with a BOM or recognisably without one, else UTF-8 (with or without BOM), else GB18030."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return ("utf-16",)
    utf16 = utf16_without_bom(head)
    return (utf16,) if utf16 else ("utf-8-sig", "gb18030")


class _Trial:
    """One encoding tried on a file fed piece by piece: where it first fails (a byte offset), the line of its
    first NUL character, and whether the text holds anything `plain` changes."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        # The BOM is valid UTF-8: checking needs no "-sig" (which would also drop a U+FEFF met later).
        self.decoder = codecs.getincrementaldecoder("utf-8" if encoding == "utf-8-sig" else encoding)()
        self.utf8 = encoding == "utf-8-sig"
        self.failed: int | None = None
        self.nul_line: int | None = None
        self.newlines = 0
        self.wide = False

    def feed(self, chunk: bytes, offset: int, final: bool = False) -> None:
        if self.failed is not None:
            return
        pending = self.decoder.getstate()[0]
        if self.utf8 and not pending and chunk.isascii():
            return  # ASCII: valid UTF-8, nothing full-width, and (NUL bytes refused before) no NUL
        try:
            text = self.decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            self.failed = offset - len(pending) + exc.start
            return
        if not self.wide and has_wide(text):
            self.wide = True
        if self.encoding.startswith("utf-16") and self.nul_line is None:
            at = text.find("\x00")
            if at >= 0:
                self.nul_line = self.newlines + text[:at].count("\n") + 1
            else:
                self.newlines += text.count("\n")


def _opened(name: str, path: Path | str) -> BinaryIO:
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        why = exc.strerror or exc
        raise MalformedFile(name, None, None, zh=f"无法读取：{why}", en=f"cannot read: {why}") from exc


def _identity(fh: BinaryIO) -> tuple[int, int, int, int]:
    st = os.fstat(fh.fileno())
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _try(fh: BinaryIO, encoding: str) -> _Trial:
    fh.seek(0)
    trial, offset = _Trial(encoding), 0
    while chunk := fh.read(CHUNK):
        trial.feed(chunk, offset)
        offset += len(chunk)
    trial.feed(b"", offset, final=True)
    return trial


def _line_at(fh: BinaryIO, offset: int) -> int:
    """The line holding the byte at `offset`: the newlines before it, counted piece by piece."""
    fh.seek(0)
    newlines = 0
    while offset > 0 and (chunk := fh.read(min(CHUNK, offset))):
        newlines += chunk.count(b"\n")
        offset -= len(chunk)
    return newlines + 1


def scan(path: Path | str) -> Scanned:
    """A first pass over a text file, piece by piece: its digest, and its encoding — UTF-16 with a BOM or
    recognisably without one, else UTF-8 (with or without BOM), else GB18030 (a superset of GBK) — with NUL
    characters and broken bytes refused, naming their line."""
    name = str(path)
    with _opened(name, path) as fh:
        identity = _identity(fh)
        digest = hashlib.sha256()
        candidates = _candidates(fh.read(4096))
        fh.seek(0)
        chunk = fh.read(CHUNK)
        trial = _Trial(candidates[0])
        nul: int | None = None  # the first NUL byte, when the file must be UTF-8 or GB18030
        offset = 0
        while chunk:
            digest.update(chunk)
            if trial.utf8 and nul is None and (at := chunk.find(b"\x00")) >= 0:
                nul = offset + at
            if nul is None:
                trial.feed(chunk, offset)
            offset += len(chunk)
            chunk = fh.read(CHUNK)
        if nul is not None:
            raise MalformedFile(name, _line_at(fh, nul), None, zh="含有 NUL 字节（不是文本文件：请导入 .xlsx 或 CSV 文件）",
                                en="contains a NUL byte (not a text file: import a .xlsx or a CSV file)")
        trial.feed(b"", offset, final=True)
        for encoding in candidates[1:]:
            if trial.failed is None:
                break
            trial = _try(fh, encoding)
        if trial.failed is not None:
            if trial.encoding.startswith("utf-16"):
                raise MalformedFile(name, None, None, zh="不是有效的 UTF-16 文本", en="is not valid UTF-16 text")
            raise MalformedFile(name, _line_at(fh, trial.failed), None, zh="既不是 UTF-8 也不是 GB18030/GBK 文本",
                                en="is neither UTF-8 nor GB18030/GBK text")
        if trial.nul_line is not None:
            raise MalformedFile(name, trial.nul_line, None, zh="含有 NUL 字符（不是文本文件：请导入 .xlsx 或 CSV 文件）",
                                en="contains a NUL character (not a text file: import a .xlsx or a CSV file)")
    return Scanned(name, digest.hexdigest(), trial.encoding, trial.wide, identity)


def _changed(name: str) -> MalformedFile:
    return MalformedFile(name, None, None, zh="在读取过程中被修改：请待其保存完毕后重新导入",
                         en="changed while it was being read: import it again once it is saved")


def text_lines(scanned: Scanned) -> Iterator[str]:
    """The file's lines as `io.StringIO(text, newline="")` would yield them from its whole text (a lone CR ends a
    line too), decoded and made plain piece by piece: memory flat in the file's size. The file must be the one
    scanned, from its first byte to its last."""
    with _opened(scanned.path, scanned.path) as raw:
        if _identity(raw) != scanned.identity:
            raise _changed(scanned.path)
        text = io.TextIOWrapper(raw, encoding=scanned.encoding, newline="")
        try:
            for line in text:
                # Made plain only when something needs it: a pass over every line would cost a million rows' time.
                yield plain(line) if scanned.wide else line
        except UnicodeDecodeError:
            raise _changed(scanned.path) from None
        if _identity(raw) != scanned.identity:
            raise _changed(scanned.path)


def separator(line: str) -> str:
    """Tab when the header line holds more tabs than commas (Excel's "Unicode text", a tab-separated export)."""
    return "\t" if line.count("\t") > line.count(",") else ","


def _broken(path: str, line: int, exc: csv.Error) -> MalformedFile:
    """A row Python's CSV reader cannot take (an unclosed quote …): its own words after ours."""
    return MalformedFile(path, line, None, zh=f"CSV 格式有误（{exc}）", en=str(exc))


def read_table(path: Path | str) -> Source:
    """A CSV or tab-separated file as a `Source`: its encoding and separator detected, its header row read, its data
    rows streamed as (line, values) with full-width digits, letters and spaces made plain, blank rows skipped and
    each row as wide as the header. The file is read in pieces, never held whole (a million members' evidence is
    hundreds of megabytes)."""
    source = scan(path)
    lines = text_lines(source)
    first = next(lines, "")
    reader = csv.reader(itertools.chain((first,) if first else (), lines), delimiter=separator(first), strict=True)
    # The header is the first row naming known columns among the first rows (a title row a spreadsheet saved
    # above it is skipped), else the first row; rows read while looking are data again.
    looked: list[tuple[int, list[str]]] = []
    try:
        while len(looked) < TITLE_ROWS:
            row = next(reader)
            looked.append((reader.line_num, row))
            if is_header(row):
                break
    except StopIteration:
        pass
    except csv.Error as exc:
        raise _broken(source.path, reader.line_num, exc) from None
    if not looked:
        raise MalformedFile(source.path, 1, None, zh="是空文件（没有表头行）", en="is empty (no header row)")
    at = header_at([row for _line, row in looked])
    header_line, header = looked[at][0], [h.strip() for h in looked[at][1]]
    replay = looked[at + 1 :]

    def data() -> Iterator[tuple[int, list[str]]]:
        pending = iter(replay)
        while True:
            try:
                line, values = next(pending, None) or (0, next(reader))
            except StopIteration:
                return
            except csv.Error as exc:
                raise _broken(source.path, reader.line_num, exc) from None
            line = line or reader.line_num
            if not values or not "".join(values).strip():
                continue
            if len(values) != len(header):
                raise MalformedFile(source.path, line, None, zh=f"有 {len(values)} 个字段，表头有 {len(header)} 个",
                                    en=f"has {len(values)} fields, the header {len(header)}")
            yield line, values

    return Source(source.path, source.sha256, header, data(), header_line=header_line)
