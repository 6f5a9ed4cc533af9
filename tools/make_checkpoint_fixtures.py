#!/usr/bin/env python3
# Writes the small checkpoint fixtures under tests/fixtures/checkpoint/ for tests/core/test_checkpoint.cpp.
# Fixtures were generated with torch 1.13.0a0 (Debian python3-torch) and safetensors 0.8.0 (PyPI), via
# .venv/bin/python (tools/setup-python.sh). The .pth files come from torch.save itself; the .safetensors files
# from the official safetensors.torch.save_file, so the C++ readers are checked against independent writers.
# written_by_aviary.pth is NOT made here: Aviary's write_pth made it (test PthWriter.ReproducesTorchVerifiedFixture...
# with AVIARY_CKPT_WRITE_PTH_DIR set) and --verify-pth checked it with torch.load before it was committed.
# Usage: make_checkpoint_fixtures.py [--out DIR] | --verify FILE.safetensors (checks a C++-written all_dtypes copy)
#        | --verify-pth FILE.pth (torch.loads a C++-written written_by_aviary.pth and compares every tensor)
import argparse
import collections
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib

import torch
import safetensors
import safetensors.torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "fixtures", "checkpoint")


def all_dtypes_dict():
    """Seeded tensors of every supported dtype, a parameter, a 0-d and an empty tensor, and views that
    share one storage (transposed, sliced with an offset, a row)."""
    g = torch.Generator().manual_seed(1234)
    d = collections.OrderedDict()
    d["f32"] = torch.randn(3, 5, generator=g)
    d["f16"] = torch.randn(4, 3, generator=g).half()
    d["bf16"] = torch.randn(2, 3, 4, generator=g).bfloat16()
    d["f64"] = torch.randn(5, generator=g, dtype=torch.float64)
    d["i64"] = torch.randint(-(2**40), 2**40, (3, 4), generator=g, dtype=torch.int64)
    d["i32"] = torch.randint(-(2**30), 2**30, (6,), generator=g, dtype=torch.int32)
    d["i8"] = torch.randint(-128, 128, (2, 5), generator=g, dtype=torch.int8)
    d["u8"] = torch.randint(0, 256, (7,), generator=g, dtype=torch.uint8)
    d["bool"] = torch.rand(3, 3, generator=g) > 0.5
    d["scalar"] = torch.tensor(3.25)
    d["empty"] = torch.zeros(0, 4)
    d["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    base = torch.randn(4, 6, generator=g)
    d["view.base"] = base
    d["view.transposed"] = base.t()        # strides (1, 6)
    d["view.slice"] = base[1:3, 2:5]       # offset 8, strides (6, 1)
    d["view.row"] = base[2]                # offset 12, contiguous, part of the storage
    d["view.column"] = base[:, 3]          # offset 3, stride 6
    return d


class TinyNet(torch.nn.Module):
    """A real module so that state_dict() carries `_metadata` (nested names, versions)."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.blocks = torch.nn.Sequential(torch.nn.LayerNorm(4), torch.nn.Linear(4, 4))
        self.head = torch.nn.Linear(4, 3, bias=False)
        self.register_buffer("scale", torch.full((4,), 0.5))


def module_state_dict():
    torch.manual_seed(99)
    sd = TinyNet().state_dict()
    assert hasattr(sd, "_metadata")
    return sd


def plain(d):
    """Contiguous, unshared, non-parameter copies, as safetensors.torch.save_file requires."""
    return collections.OrderedDict((k, v.detach().clone().contiguous()) for k, v in d.items())


def write_manifest(path, groups):
    """One line per tensor: file name dtype shape sum(float64) — an independent check on values."""
    with open(path, "w") as f:
        f.write("# file name dtype shape(comma-separated, '-' for 0-d) sum_as_float64"
                " — from make_checkpoint_fixtures.py\n")
        for fname, d in groups:
            for k, v in d.items():
                shape = ",".join(str(s) for s in v.shape) or "-"
                total = v.detach().double().sum().item()
                f.write(f"{fname} {k} {str(v.dtype).replace('torch.', '')} {shape} {total!r}\n")


def fixed_info(name, compression):
    """Zip entry info with a fixed timestamp so that regenerated fixtures are byte-identical."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = compression
    return info


def rezip(src, dst, compression=zipfile.ZIP_STORED, extra_entries=None):
    """Copies a torch.save zip entry by entry (e.g. with deflate, or with an extra entry)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
        prefix = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            zout.writestr(fixed_info(info.filename, compression), zin.read(info.filename))
        for name, data in (extra_entries or {}).items():
            zout.writestr(fixed_info(f"{prefix}/{name}", compression), data)


def write_zip64(src, dst):
    """Rewrites a zip so every central directory entry uses the zip64 extra field (sizes and offset set to
    0xFFFFFFFF in the 32-bit slots), plus zip64 end records — a layout torch.save uses for large files."""
    with zipfile.ZipFile(src) as zin:
        items = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    out = io.BytesIO()
    central = []
    for name, data in items:
        nb = name.encode()
        crc = zlib.crc32(data)
        offset = out.tell()
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                              len(nb), len(local_extra)))
        out.write(nb + local_extra + data)
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                                   0xFFFFFFFF, len(nb), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + nb + extra)
    cd_offset = out.tell()
    cd = b"".join(central)
    out.write(cd)
    z64 = out.tell()
    out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(items), len(items), len(cd), cd_offset))
    out.write(struct.pack("<IIQI", 0x07064B50, 0, z64, 1))
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    with open(dst, "wb") as f:
        f.write(out.getvalue())


def write_pickle_zip(dst, pickle_bytes, prefix="archive"):
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(fixed_info(f"{prefix}/data.pkl", zipfile.ZIP_STORED), pickle_bytes)
        z.writestr(fixed_info(f"{prefix}/version", zipfile.ZIP_STORED), "3\n")


def generate(out):
    os.makedirs(out, exist_ok=True)
    j = lambda name: os.path.join(out, name)

    dt = all_dtypes_dict()
    torch.save(dt, j("all_dtypes.pth"))
    safetensors.torch.save_file(plain(dt), j("all_dtypes.safetensors"),
                                metadata={"format": "pt", "source": "make_checkpoint_fixtures.py"})
    sd = module_state_dict()
    torch.save(sd, j("module.pth"))
    # Protocol 4 exercises FRAME / STACK_GLOBAL / MEMOIZE; the {"state_dict": ...} wrapper is accepted too.
    torch.save({"state_dict": sd}, j("module_proto4.pth"), pickle_protocol=4)
    safetensors.torch.save_file(plain(sd), j("module.safetensors"))
    write_zip64(j("module.pth"), j("module_zip64.pth"))
    write_manifest(j("manifest.txt"), [("all_dtypes", dt), ("module", sd)])

    # Files that must be refused.
    rezip(j("module.pth"), j("bad_compressed.pth"), compression=zipfile.ZIP_DEFLATED)
    rezip(j("module.pth"), j("bad_big_endian.pth"), extra_entries={"byteorder": "big"})
    torch.save({"a": [torch.ones(2), torch.zeros(2)]}, j("bad_list_of_tensors.pth"))
    torch.save(torch.ones(3), j("bad_not_a_dict.pth"))
    # PROTO 2, GLOBAL os.system, 'echo pwned', TUPLE1, REDUCE, STOP.
    write_pickle_zip(j("bad_global_os_system.pth"),
                     b"\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02R.")
    # torch.storage._load_from_bytes runs torch.load on embedded bytes: refused as well.
    write_pickle_zip(j("bad_global_load_from_bytes.pth"),
                     b"\x80\x02ctorch.storage\n_load_from_bytes\nq\x00C\x01xq\x01\x85R.")
    for name in sorted(os.listdir(out)):
        print(f"{os.path.getsize(j(name)):8d}  {name}")


def verify(path):
    """Checks a file written by Aviary's write_safetensors (from the all_dtypes fixture) with the official reader."""
    got = safetensors.torch.load_file(path)
    want = plain(all_dtypes_dict())
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = f.read(n)
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    assert list(got.keys()) == list(want.keys()) or set(got) == set(want), "tensor names differ"
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        assert torch.equal(got[k], v), k
    print(f"ok: {path} ({len(got)} tensors, header {n} bytes) matches the official reader; header begins "
          f"{header[:60]!r}")


def written_tensors():
    """The tensors of written_by_aviary.pth; mirrors written_fixture_tensors() in tests/core/test_checkpoint.cpp.
    Exact values only (multiples of powers of two, integer formulas), so both sides build identical tensors."""
    ar = lambda n, dt: torch.arange(n, dtype=dt)
    d = collections.OrderedDict()
    d["emb.weight"] = (ar(12, torch.float32) * 0.25 - 1.5).reshape(4, 3)
    d["blocks.0.att.time_decay"] = (ar(6, torch.float32) * 0.5 - 1.0).reshape(2, 3).half()
    d["blocks.0.ln1.weight"] = (ar(5, torch.float32) * 0.125 + 1.0).bfloat16()
    d["bf16.4d"] = (ar(4, torch.float32) - 2.0).reshape(1, 2, 1, 2).bfloat16()
    d["f64"] = ar(3, torch.float64) * 0.75
    d["i64"] = (ar(4, torch.int64) * 2**40 - 3).reshape(2, 2)
    d["i32"] = ar(3, torch.int32) * 1000 - 1500
    d["i8"] = (ar(4, torch.int32) * 50 - 100).to(torch.int8)
    d["u8"] = (ar(3, torch.int32) * 100 + 7).to(torch.uint8)
    d["bool"] = (ar(6, torch.int64) % 2 == 0).reshape(2, 3)
    d["transposed"] = (ar(6, torch.float32) * 0.5).reshape(2, 3).t()
    d["wide"] = (ar(300, torch.int32) % 7).half().reshape(1, 300)
    d["scalar"] = torch.tensor(3.25)
    d["empty"] = torch.empty(0, 4)
    d["empty.huge_dims"] = torch.empty(70000, 0, 2**33)
    d["n\u00e4me.\u2713"] = torch.full((2,), -0.5)
    return d


def verify_pth(path):
    """torch.loads a .pth written by Aviary's write_pth and compares it with written_tensors(): names in order,
    dtypes, shapes, values; zipfile re-checks every CRC; weights_only and mmap loading where this torch has them."""
    import inspect
    want = written_tensors()
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        assert bad is None, f"CRC mismatch in zip entry {bad}"
        names = z.namelist()
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist()), "entries must be STORED"
    params = inspect.signature(torch.load).parameters
    modes = [{}]
    if "weights_only" in params:
        modes.append({"weights_only": True})
    if "mmap" in params:
        modes.append({"mmap": True, "weights_only": True})
    for kw in modes:
        got = torch.load(path, **kw)
        assert isinstance(got, collections.OrderedDict), f"loaded a {type(got).__name__}, expected OrderedDict"
        assert list(got.keys()) == list(want.keys()), f"names differ: {list(got.keys())}"
        for k, v in want.items():
            g = got[k]
            assert g.dtype == v.dtype and g.shape == v.shape, f"{k}: {g.dtype} {tuple(g.shape)}"
            assert g.is_contiguous() and g.stride() == v.contiguous().stride(), f"{k}: stride {g.stride()}"
            assert torch.equal(g, v), f"{k}: values differ"
        print(f"ok: torch.load({path!r}{''.join(f', {a}={b}' for a, b in kw.items())}) -> {len(got)} tensors equal")
    # The pickle means what torch.save's own pickle of the same dict means (memo use may differ, calls may not).
    resaved = io.BytesIO()
    torch.save(torch.load(path), resaved)
    assert symbolic_pickle(path) == symbolic_pickle(resaved), "data.pkl differs from torch.save's"
    print(f"   entries: {names[:3]} ... {names[-1]!r}; zip CRCs verified by zipfile.testzip(); data.pkl has the "
          f"same calls, storages and arguments as torch.save's")


def symbolic_pickle(file):
    """Unpickles data.pkl with calls recorded as tuples and persistent ids kept as they are (nothing loaded)."""
    class Symbolic(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if name.endswith("Storage"):
                return f"{module}.{name}"
            return lambda *args, _name=f"{module}.{name}": (_name,) + args

        def persistent_load(self, pid):
            return ("persistent_id",) + tuple(pid)

    with zipfile.ZipFile(file) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        return Symbolic(io.BytesIO(z.read(pkl))).load()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--verify", metavar="FILE")
    ap.add_argument("--verify-pth", metavar="FILE")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, safetensors {safetensors.__version__}", file=sys.stderr)
    if a.verify_pth:
        verify_pth(a.verify_pth)
    elif a.verify:
        verify(a.verify)
    else:
        generate(a.out)


if __name__ == "__main__":
    main()
