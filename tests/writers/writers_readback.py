"""Reading writer output back with pyarrow, independently of the writers' own code."""
import hashlib
import os

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import xxhash
from blake3 import blake3

from cdrexp.model.schema import RECORD_SCHEMA

PLAIN_TYPES = {f.name: (pa.string() if pa.types.is_dictionary(f.type) else f.type)
               for f in RECORD_SCHEMA}


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded to strings: what a CSV reader sees."""
    return table.cast(pa.schema([(n, PLAIN_TYPES[n]) for n in table.column_names]))


def raw_text(path: str) -> bytes:
    """A file's uncompressed bytes (compression detected from the extension)."""
    with pa.input_stream(path, compression="detect") as fh:
        return fh.read()


def read_csv(path: str) -> pa.Table:
    return pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=";", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types=PLAIN_TYPES,
                                             strings_can_be_null=True, null_values=[""]))


def read_any(path: str) -> pa.Table:
    if path.endswith(".parquet"):
        return plain(pq.read_table(path))
    return read_csv(path)


def read_parts(root: str, files) -> pa.Table:
    """The unit's parts concatenated in part order, as plain columns."""
    tables = [read_any(os.path.join(root, f.path)) for f in files]
    return pa.concat_tables(tables) if tables else None


def checksum_file(path: str, algorithm: str = "xxh128") -> str:
    """The file's digest, computed independently of the writers (xxh128 is the default
    ``output.checksum``)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if algorithm == "xxh128":
        return xxhash.xxh128(data).hexdigest()
    if algorithm == "blake3":
        return blake3(data).hexdigest()
    return hashlib.new(algorithm, data).hexdigest()


def files_under(root: str) -> list[str]:
    """Every file below root, relative, hidden ones included."""
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return sorted(out)
