#!/usr/bin/env python3
"""Where a Worker's wasm bytes go: code size per crate (raw and gzipped), the
data section, and the largest functions. Reads the build that keeps the
`name` section (`target/wasm-names/<crate>.wasm`, written by
`scripts/build-worker.sh` for every optimized build). twiggy 0.7 cannot parse
modules with reference types, so this reads the sections itself.

Usage: scripts/wasm-sizes.py target/wasm-names/rooms.wasm [top-functions]
"""
import collections, re, sys, zlib

from wasm_module import custom_name, leb, sections


def imported_functions(body):
    count, j = leb(body, 0)
    funcs = 0
    for _ in range(count):
        for _ in range(2):  # module and field names
            n, j = leb(body, j)
            j += n
        kind = body[j]
        j += 1
        if kind == 0:  # function: type index
            _, j = leb(body, j)
            funcs += 1
        elif kind == 1:  # table: element type, limits
            j += 1
            flags, j = leb(body, j)
            _, j = leb(body, j)
            if flags & 1:
                _, j = leb(body, j)
        elif kind == 2:  # memory: limits
            flags, j = leb(body, j)
            _, j = leb(body, j)
            if flags & 1:
                _, j = leb(body, j)
        elif kind == 3:  # global: type, mutability
            j += 2
        elif kind == 4:  # tag
            j += 1
            _, j = leb(body, j)
    return funcs


def function_names(body):
    """The function names of a `name` section's body (its name first)."""
    if custom_name(body, 0) != b"name":
        return {}
    n, j = leb(body, 0)
    j += n
    names = {}
    while j < len(body):
        sub = body[j]
        size, j = leb(body, j + 1)
        end = j + size
        if sub == 1:
            count, k = leb(body, j)
            for _ in range(count):
                index, k = leb(body, k)
                length, k = leb(body, k)
                names[index] = body[k:k + length].decode("utf8", "replace")
                k += length
        j = end
    return names


def crate_of(name):
    """The crate a function belongs to: the first path segment of its
    symbol, or of the type in `<T as Trait>::f`."""
    name = re.sub(r"^<+(&(mut )?)?", "", name)
    head = re.split(r"::|\[| as ", name, maxsplit=1)[0]
    return head if re.fullmatch(r"[a-z_][a-z0-9_]*", head) else "(other)"


def main():
    data = open(sys.argv[1], "rb").read()
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    imports, bodies, names, data_bytes = 0, [], {}, 0
    for sid, _, start, end in sections(data):
        body = data[start:end]
        if sid == 2:
            imports = imported_functions(body)
        elif sid == 10:
            count, j = leb(body, 0)
            for _ in range(count):
                size, k = leb(body, j)
                bodies.append(body[k:k + size])
                j = k + size
        elif sid == 11:
            data_bytes = len(body)
        elif sid == 0:
            names.update(function_names(body))
    raw = collections.Counter()
    packed = collections.Counter()
    functions = []
    for index, body in enumerate(bodies):
        name = names.get(imports + index, f"wasm-function[{imports + index}]")
        crate = crate_of(name)
        raw[crate] += len(body)
        packed[crate] += len(zlib.compress(body, 9))
        functions.append((len(body), name))
    code = sum(raw.values())
    print(f"{sys.argv[1]}: {len(data)} bytes; code {code} in {len(bodies)} functions; data {data_bytes}")
    print("  code by crate (raw / each function deflated alone):")
    for crate, size in raw.most_common(12):
        print(f"  {size:8d} {packed[crate]:8d}  {size / code:5.1%}  {crate}")
    print(f"  largest functions:")
    for size, name in sorted(functions, reverse=True)[:top]:
        print(f"  {size:8d}  {name[:110]}")


if __name__ == "__main__":
    main()
