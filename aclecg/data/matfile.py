"""A strict reader for the MATLAB files the supported datasets use, in place of ``scipy.io.loadmat``.

``scipy.io.loadmat`` trusts the file: a 224-byte file with a reserved data type crashes the process and a 1 MB
compressed element can expand to gigabytes. This module reads only the documented layouts (MathWorks, "MAT-File
Format", 2019) that the datasets need, checks every declared size against the bytes present before using it,
and refuses everything else by name with a :class:`~aclecg.errors.DataError`:

* MAT-4 (Level 4, the Challenge's ``val``): full numeric matrices, little- or big-endian IEEE, real;
* MAT-5 (Level 5, CPSC 2018's ``ECG``): top-level ``miMATRIX`` elements, plain or ``miCOMPRESSED``, holding a
  2-D real numeric array, a one-row char array, or a 1 x 1 (or empty) struct whose fields are such arrays.

Refused: MAT 7.3 (HDF5), reserved or unknown data types, cell, object, sparse, logical, complex and function
arrays, nested structs, struct arrays, more than two dimensions, and a compressed element that decompresses to
more than it declares, to more than :data:`~aclecg.data.limits.MAX_COMPRESSION_RATIO` times its size (at least
1 MiB) or to more than :data:`~aclecg.data.limits.MAX_MAT_BYTES` in all. Decompression is incremental and stops
at the declared size, so memory stays bounded by those limits.

Values come back as loadmat gives them by default: numeric arrays in their stored type (e.g. ``int16``, or
``uint8`` for a double MATLAB saved in one byte), Fortran-ordered, native byte order; char arrays as ``str``;
structs as ``dict`` (an empty struct's fields map to None).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from aclecg.data.limits import MAX_COMPRESSION_RATIO, MAX_MAT_BYTES
from aclecg.errors import DataError

__all__ = ["MatValue", "mat_version", "parse_mat"]

MatValue = np.ndarray | str | dict

#: MAT-5 data types holding numbers -> numpy type code.
_MI_NUMERIC = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MI_TEXT = {16: "utf-8", 17: "utf-16", 18: "utf-32"}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
#: MAT-5 array classes.
_NUMERIC_CLASSES = set(range(6, 16))
_CLASS_NAMES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 16: "function", 17: "opaque"}
#: MAT-4 precision digit -> numpy type code.
_MAT4_TYPES = {0: "f8", 1: "f4", 2: "i4", 3: "i2", 4: "u2", 5: "u1"}
MAX_VARIABLES = 64
MAX_FIELDS = 64


class _Refused(Exception):
    """A reason the file is refused (turned into a DataError naming the file by :func:`parse_mat`)."""


def mat_version(data: bytes) -> int | None:
    """4 or 5 for a MAT-4 / MAT-5 header (7 for MAT 7.3, which is HDF5), None for anything else."""
    if len(data) >= 4 and 0 in data[:4]:  # a MAT-5 header starts with text; a MAT-4 one with a small number
        for order in "<>":
            mopt = struct.unpack(order + "i", data[:4])[0]
            if 0 <= mopt < 2000 and mopt // 1000 == (0 if order == "<" else 1):
                return 4
        return None
    if len(data) >= 128 and data[126:128] in (b"IM", b"MI"):
        major = data[125] if data[126:128] == b"IM" else data[124]
        if major in (1, 2):
            return 5 if major == 1 else 7
    return None


def parse_mat(data: bytes, source: str) -> dict[str, MatValue]:
    """Variable name -> value of a MAT-4 or MAT-5 file's bytes; DataError naming ``source`` when refused."""
    try:
        version = mat_version(data)
        if version == 4:
            return _parse_mat4(data)
        if version == 5:
            return _parse_mat5(data)
        if version == 7:
            raise _Refused("a MATLAB 7.3 (HDF5) file; only MAT-4 and MAT-5 files are read")
        raise _Refused("not a readable MATLAB file (no MAT-4 or MAT-5 header)")
    except _Refused as exc:
        raise DataError(f"{source}: {exc}; refused") from None


# --------------------------------------------------------------------------------------------------- MAT-4


def _parse_mat4(data: bytes) -> dict[str, MatValue]:
    out: dict[str, MatValue] = {}
    pos = 0
    while pos < len(data):
        if len(data) - pos < 20:
            raise _Refused(f"MAT-4 matrix header at byte {pos} is cut short")
        order = "<" if struct.unpack("<i", data[pos : pos + 4])[0] in range(0, 1000) else ">"
        mopt, rows, cols, imagf, namlen = struct.unpack(order + "5i", data[pos : pos + 20])
        machine, zero, precision, kind = mopt // 1000, mopt // 100 % 10, mopt // 10 % 10, mopt % 10
        if mopt < 0 or machine != (0 if order == "<" else 1) or zero != 0 or precision not in _MAT4_TYPES:
            raise _Refused(f"MAT-4 matrix type {mopt} is not a little- or big-endian IEEE number type")
        if kind != 0:
            raise _Refused(f"MAT-4 matrix type {mopt} is {'text' if kind == 1 else 'sparse'}, not a full matrix")
        if imagf:
            raise _Refused("MAT-4 matrix holds complex numbers")
        if rows < 0 or cols < 0 or not 1 <= namlen <= 64:
            raise _Refused(f"MAT-4 matrix declares {rows} x {cols} values and a {namlen}-byte name")
        if pos + 20 + namlen > len(data):
            raise _Refused(f"MAT-4 matrix name at byte {pos + 20} is cut short")
        name = _name(data[pos + 20 : pos + 20 + namlen])
        dtype = np.dtype(order + _MAT4_TYPES[precision])
        start = pos + 20 + namlen
        nbytes = rows * cols * dtype.itemsize
        if start + nbytes > len(data):
            raise _Refused(f"variable {name} declares {nbytes} bytes but the file ends {len(data) - start} bytes later")
        _store(out, name, _array(data, start, dtype, (rows, cols)))
        pos = start + nbytes
    return out


# --------------------------------------------------------------------------------------------------- MAT-5


def _parse_mat5(data: bytes) -> dict[str, MatValue]:
    order = "<" if data[126:128] == b"IM" else ">"
    out: dict[str, MatValue] = {}
    budget = [MAX_MAT_BYTES]
    pos = 128
    while pos < len(data):
        if len(data) - pos < 8 and not any(data[pos:]):
            break  # zero padding at the end
        mtype, nbytes, start, _ = _tag(data, pos, len(data), order)
        if mtype == _MI_COMPRESSED:
            inner = _inflate(data[start : start + nbytes], order, budget)
            itype, inbytes, istart, _ = _tag(inner, 0, len(inner), order)
            if itype != _MI_MATRIX:
                raise _Refused(f"compressed element holds {_type_name(itype)}, not a matrix")
            name, value = _matrix(inner, istart, istart + inbytes, order, top=True)
        elif mtype == _MI_MATRIX:
            name, value = _matrix(data, start, start + nbytes, order, top=True)
        else:
            raise _Refused(f"top-level element of {_type_name(mtype)} at byte {pos}, not a matrix")
        _store(out, name, value)
        pos = start + nbytes
    return out


def _type_name(mtype: int) -> str:
    if mtype in _MI_NUMERIC or mtype in _MI_TEXT or mtype in (_MI_MATRIX, _MI_COMPRESSED):
        return f"data type {mtype}"
    return f"reserved or unknown data type {mtype}"


def _tag(buf: bytes, pos: int, end: int, order: str) -> tuple[int, int, int, int]:
    """(data type, byte count, data start, next element) of the element at ``pos``, checked to fit in ``end``."""
    if end - pos < 8:
        raise _Refused(f"data element at byte {pos} is cut short")
    first, second = struct.unpack(order + "II", buf[pos : pos + 8])
    if first >> 16:  # small data element: type and size share the first word, data in the second
        mtype, nbytes, start = first & 0xFFFF, first >> 16, pos + 4
        if nbytes > 4:
            raise _Refused(f"small data element at byte {pos} declares {nbytes} bytes (at most 4)")
        return mtype, nbytes, start, pos + 8
    mtype, nbytes, start = first, second, pos + 8
    if nbytes > end - start:
        raise _Refused(f"data element at byte {pos} declares {nbytes} bytes but only {end - start} remain")
    return mtype, nbytes, start, start + nbytes + (-nbytes % 8)


def _inflate(packed: bytes, order: str, budget: list[int]) -> bytes:
    """Decompress one ``miCOMPRESSED`` element, never producing more than it declares or the limits allow."""
    limit = min(budget[0], max(1 << 20, MAX_COMPRESSION_RATIO * len(packed)))
    inflater = zlib.decompressobj()
    try:
        head = inflater.decompress(packed, 8)
        while len(head) < 8 and inflater.unconsumed_tail:
            head += inflater.decompress(inflater.unconsumed_tail, 8 - len(head))
        if len(head) < 8:
            raise _Refused("compressed element holds no complete data element")
        first, nbytes = struct.unpack(order + "II", head)
        declared = 8 + (nbytes if not first >> 16 else 0)
        if first >> 16 or first != _MI_MATRIX:
            raise _Refused(f"compressed element holds {_type_name(first & 0xFFFF)}, not a matrix")
        if declared > limit:
            raise _Refused(
                f"compressed element of {len(packed)} bytes declares {declared} bytes, over the {limit}-byte limit "
                f"({MAX_COMPRESSION_RATIO}x its size, at most {budget[0]} bytes left for the file)"
            )
        body = inflater.decompress(inflater.unconsumed_tail, declared - 8 + 1)
    except zlib.error as exc:
        raise _Refused(f"compressed element is corrupt (zlib: {exc})") from None
    if len(body) > declared - 8:
        raise _Refused(f"compressed element decompresses to more than the {declared} bytes it declares")
    if len(body) < declared - 8:
        raise _Refused(f"compressed element decompresses to {8 + len(body)} of the {declared} bytes it declares")
    budget[0] -= declared
    return head + body


def _matrix(buf: bytes, start: int, end: int, order: str, top: bool) -> tuple[str, MatValue]:
    """(name, value) of the ``miMATRIX`` element whose data lies in ``buf[start:end]``."""
    if start == end:
        if top:
            raise _Refused("a top-level matrix is empty (no name, no data)")
        return "", np.zeros((0, 0))
    ftype, fbytes, fstart, pos = _tag(buf, start, end, order)
    if ftype != 6 or fbytes != 8:
        raise _Refused("matrix without its array-flags element")
    flags = struct.unpack(order + "I", buf[fstart : fstart + 4])[0]
    mclass = flags & 0xFF
    dtype_, dbytes, dstart, pos = _tag(buf, pos, end, order)
    if dtype_ != 5 or dbytes % 4 or dbytes < 8:
        raise _Refused("matrix without a valid dimensions element")
    dims = struct.unpack(order + f"{dbytes // 4}i", buf[dstart : dstart + dbytes])
    ntype, nbytes, nstart, pos = _tag(buf, pos, end, order)
    if ntype not in (1, 2):
        raise _Refused("matrix without its name element")
    name = _name(buf[nstart : nstart + nbytes]) if nbytes else ""
    label = f"variable {name}" if top else "a struct field"
    if top and not name:
        raise _Refused("a top-level matrix has no name")
    if mclass in _CLASS_NAMES and mclass not in (2, 4):
        raise _Refused(f"{label} is a {_CLASS_NAMES[mclass]} array; only numeric, char and struct arrays are read")
    if len(dims) > 2:
        raise _Refused(f"{label} has {len(dims)} dimensions (at most 2 are read)")
    if min(dims) < 0:
        raise _Refused(f"{label} declares negative dimensions {dims}")
    if flags & 0x800:
        raise _Refused(f"{label} holds complex numbers")
    if flags & 0x200:
        raise _Refused(f"{label} is a logical array; only numeric, char and struct arrays are read")
    if mclass in _NUMERIC_CLASSES:
        return name, _numeric(buf, pos, end, order, (dims[0], dims[1]), label)
    if mclass == 4:
        return name, _char(buf, pos, end, order, (dims[0], dims[1]), label)
    if mclass == 2:
        if not top:
            raise _Refused(f"{label} is a nested struct; only numeric and char fields are read")
        return name, _struct(buf, pos, end, order, (dims[0], dims[1]), label)
    raise _Refused(f"{label} has unknown array class {mclass}")


def _numeric(buf: bytes, pos: int, end: int, order: str, dims: tuple[int, int], label: str) -> np.ndarray:
    mtype, nbytes, start, _ = _tag(buf, pos, end, order)
    if mtype not in _MI_NUMERIC:
        raise _Refused(f"{label} stores its values as {_type_name(mtype)}")
    dtype = np.dtype(order + _MI_NUMERIC[mtype])
    if nbytes != dims[0] * dims[1] * dtype.itemsize:
        raise _Refused(f"{label} holds {nbytes} bytes for a {dims[0]} x {dims[1]} array of {dtype.name}")
    return _array(buf, start, dtype, dims)


def _char(buf: bytes, pos: int, end: int, order: str, dims: tuple[int, int], label: str) -> str:
    if dims[0] > 1:
        raise _Refused(f"{label} is a char array of {dims[0]} rows (at most one is read)")
    mtype, nbytes, start, _ = _tag(buf, pos, end, order)
    raw = buf[start : start + nbytes]
    if mtype in _MI_TEXT:
        encoding = _MI_TEXT[mtype] if mtype == 16 else _MI_TEXT[mtype] + ("-le" if order == "<" else "-be")
    elif mtype in (2, 4):  # MATLAB's default: UTF-16 code units, or one byte per character
        encoding = "latin-1" if mtype == 2 else ("utf-16-le" if order == "<" else "utf-16-be")
    else:
        raise _Refused(f"{label} stores its characters as {_type_name(mtype)}")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise _Refused(f"{label} holds characters that are not valid {encoding}") from None


def _struct(buf: bytes, pos: int, end: int, order: str, dims: tuple[int, int], label: str) -> dict:
    ltype, lbytes, lstart, pos = _tag(buf, pos, end, order)
    if ltype != 5 or lbytes != 4:
        raise _Refused(f"{label} has no field-name length element")
    length = struct.unpack(order + "i", buf[lstart : lstart + 4])[0]
    ntype, nbytes, nstart, pos = _tag(buf, pos, end, order)
    if ntype not in (1, 2) or not 1 <= length <= 64 or nbytes % length or nbytes // length > MAX_FIELDS:
        raise _Refused(f"{label} has an invalid field-name table")
    names = [_name(buf[i : i + length]) for i in range(nstart, nstart + nbytes, length)]
    if len(set(names)) != len(names):
        raise _Refused(f"{label} names a field twice")
    count = dims[0] * dims[1]
    if count == 0:
        return dict.fromkeys(names)
    if count > 1:
        raise _Refused(f"{label} is a struct array of {count} elements (one is read)")
    fields: dict[str, MatValue] = {}
    for field in names:
        mtype, nbytes, start, pos = _tag(buf, pos, end, order)
        if mtype != _MI_MATRIX:
            raise _Refused(f"{label} field {field} is {_type_name(mtype)}, not a matrix")
        fields[field] = _matrix(buf, start, start + nbytes, order, top=False)[1]
    return fields


# --------------------------------------------------------------------------------------------------- shared


def _name(raw: bytes) -> str:
    text = raw.split(b"\x00", 1)[0]
    try:
        name = text.decode("ascii")
    except UnicodeDecodeError:
        raise _Refused(f"a variable or field name is not ASCII ({text[:20]!r})") from None
    if not name.isidentifier():
        raise _Refused(f"{name[:40]!r} is not a MATLAB variable or field name")
    return name


def _array(buf: bytes, start: int, dtype: np.dtype, dims: tuple[int, int]) -> np.ndarray:
    values = np.frombuffer(buf, dtype=dtype, count=dims[0] * dims[1], offset=start)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(dims, order="F")


def _store(out: dict[str, MatValue], name: str, value: MatValue) -> None:
    if name in out:
        raise _Refused(f"variable {name} appears twice")
    if len(out) >= MAX_VARIABLES:
        raise _Refused(f"more than {MAX_VARIABLES} variables")
    out[name] = value
