"""Reading a wasm module's sections: what strip-names.py and wasm-sizes.py
share (imported by them; not a command)."""


def leb(data, i):
    """The unsigned LEB128 number at `i`, and the index after it."""
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def sections(data):
    """Each section as (id, start, body start, end); `data` must begin with
    the module header."""
    if data[:4] != b"\0asm":
        raise ValueError("not a wasm module")
    i = 8
    while i < len(data):
        size, body = leb(data, i + 1)
        yield data[i], i, body, body + size
        i = body + size


def custom_name(data, body):
    """A custom section's name (its body starts with it)."""
    length, at = leb(data, body)
    return data[at:at + length]
