#!/usr/bin/env python3
"""Removes the `name` custom section from a wasm file, in place, keeping a
copy with names at a second path.

The names section (function names for stack traces) is a third of the
router's wasm, and worker-build always keeps it (it passes `--debuginfo` to
wasm-opt after any flags of ours). A trace from the deployed Worker then
shows `wasm-function[N]`; the copy kept beside the build maps N to a name
(`wasm-objdump -x` or `wasm-tools print` on it). Usage:
    strip-names.py BUILD_WASM KEEP_COPY
"""
import shutil
import sys


def leb(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def main():
    path, keep = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    if data[:4] != b"\0asm":
        sys.exit(f"{path} is not a wasm module")
    out = bytearray(data[:8])
    i = 8
    stripped = 0
    while i < len(data):
        start = i
        section = data[i]
        size, body = leb(data, i + 1)
        end = body + size
        if section == 0:
            name_len, name_at = leb(data, body)
            if data[name_at:name_at + name_len] == b"name":
                stripped += end - start
                i = end
                continue
        out += data[start:end]
        i = end
    if stripped:
        shutil.copyfile(path, keep)
        open(path, "wb").write(bytes(out))
    print(f"strip-names: {path}: {stripped} bytes of names removed (kept in {keep})")


main()
