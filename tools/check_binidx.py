#!/usr/bin/env python3
# Reads a binidx pair (PREFIX.bin + PREFIX.idx) the way RWKV-LM's RWKV-v5/src/binidx.py (MMapIndexedDataset)
# and its dataset.py do — numpy only — and checks it: header, sizes/pointers consistency, doc_idx, and that the
# .bin as one flat token stream has sum(sizes) tokens. Usage: check_binidx.py PREFIX [--vocab-size V]
# Prints a JSON summary (sequences, tokens, max id, first tokens); exit 1 on any inconsistency.
import json
import struct
import sys

import numpy as np

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.double, 8: np.uint16}


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) < 2:
        fail("usage: check_binidx.py PREFIX [--vocab-size V]")
    prefix = sys.argv[1]
    vocab = int(sys.argv[sys.argv.index("--vocab-size") + 1]) if "--vocab-size" in sys.argv else None
    with open(prefix + ".idx", "rb") as f:
        if f.read(9) != b"MMIDIDX\x00\x00":
            fail("bad magic")
        (version,) = struct.unpack("<Q", f.read(8))
        if version != 1:
            fail(f"version {version}")
        (code,) = struct.unpack("<B", f.read(1))
        dtype = DTYPES[code]
        (n,) = struct.unpack("<Q", f.read(8))
        (n_doc,) = struct.unpack("<Q", f.read(8))
        offset = f.tell()
    buf = np.memmap(prefix + ".idx", mode="r", order="C")
    if len(buf) != offset + n * 4 + n * 8 + n_doc * 8:
        fail(f"idx has {len(buf)} bytes, expected {offset + n * 12 + n_doc * 8}")
    sizes = np.frombuffer(buf, dtype=np.int32, count=n, offset=offset)
    pointers = np.frombuffer(buf, dtype=np.int64, count=n, offset=offset + sizes.nbytes)
    doc_idx = np.frombuffer(buf, dtype=np.int64, count=n_doc, offset=offset + sizes.nbytes + pointers.nbytes)
    item = np.dtype(dtype).itemsize
    expect_ptr = np.concatenate([[0], np.cumsum(sizes.astype(np.int64) * item)[:-1]]) if n else np.zeros(0)
    if not np.array_equal(pointers, expect_ptr):
        fail("pointers are not the running byte offsets of sizes")
    if n_doc and (doc_idx[0] != 0 or doc_idx[-1] != n or np.any(np.diff(doc_idx) < 0)):
        fail("doc_idx must rise from 0 to the number of sequences")
    data = np.memmap(prefix + ".bin", mode="r", order="C")
    tokens = np.frombuffer(data, dtype=dtype, count=len(data) // item)
    if len(tokens) != int(sizes.sum()):
        fail(f"bin has {len(tokens)} tokens, sizes sum to {int(sizes.sum())}")
    # Every sequence ends with the end-of-document id 0 (as RWKV-LM's json2binidx writes it).
    ends = (pointers // item + sizes - 1).astype(np.int64)
    if n and np.any(tokens[ends] != 0):
        fail("a sequence does not end with token 0")
    max_id = int(tokens.max()) if len(tokens) else 0
    if vocab is not None and max_id >= vocab:
        fail(f"token id {max_id} >= vocab size {vocab}")
    print(json.dumps({"sequences": int(n), "documents": int(n_doc) - 1, "tokens": int(len(tokens)),
                      "dtype": np.dtype(dtype).name, "max_id": max_id, "first": tokens[:8].tolist()}))


if __name__ == "__main__":
    main()
