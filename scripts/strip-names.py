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

from wasm_module import custom_name, sections


def main():
    path, keep = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    out = bytearray(data[:8])
    stripped = 0
    try:
        for section, start, body, end in sections(data):
            if section == 0 and custom_name(data, body) == b"name":
                stripped += end - start
            else:
                out += data[start:end]
    except ValueError as e:
        sys.exit(f"{path}: {e}")
    if stripped:
        shutil.copyfile(path, keep)
        open(path, "wb").write(bytes(out))
    print(f"strip-names: {path}: {stripped} bytes of names removed (kept in {keep})")


main()
