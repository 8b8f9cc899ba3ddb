#!/usr/bin/env python3
"""Writes the committed seed corpora in fuzz/seeds/ from thinger-core/tests/data/iotmp-vectors.md.

Run from the repository root: python3 fuzz/make_seeds.py
  pson_decode/     one file per PSON vector (the hex as bytes)
  serde_roundtrip/ the PSON vectors that are maps or arrays, plus the struct-shaped ones
  frame_decode/    2 config bytes (frame limit, chunk seed) + a few message vectors back to back
"""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "thinger-core" / "tests" / "data" / "iotmp-vectors.md"
SEEDS = ROOT / "fuzz" / "seeds"


def blocks():
    block = {}
    for line in VECTORS.read_text().splitlines() + [""]:
        if not line.strip():
            if "kind" in block and "hex" in block:
                yield block
            block = {}
            continue
        key, sep, value = line.partition(": ")
        if sep:
            block[key] = value


def write(target, name, data):
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def main():
    pson, messages = {}, {}
    for b in blocks():
        (pson if b["kind"] == "pson" else messages)[b["name"]] = bytes.fromhex(b["hex"])
    for name, data in pson.items():
        write("pson_decode", name, data)
        if data[0] >> 5 in (6, 7):  # maps and arrays
            write("serde_roundtrip", name, data)
    # A Reading-shaped map: {"temperature":23.5,"humidity":60,"label":"outdoor","tags":["a"],"kind":"Outdoor"}
    reading = (bytes([0xC5]) + b"\x8btemperature" + bytes.fromhex("400000bc41")
               + b"\x88humidity" + bytes([0x1F, 0x3C]) + b"\x85label" + b"\x87outdoor"
               + b"\x84tags" + bytes([0xE1, 0x81]) + b"a" + b"\x84kind" + b"\x87Outdoor")
    write("serde_roundtrip", "reading", reading)
    groups = {
        "session": ["connect", "ok_empty", "keep_alive", "run_output", "ok_output"],
        "resources": ["run_input", "error_404", "describe_all", "describe_reply"],
        "streams": ["start_stream_interval", "stream_data", "stop_stream", "keep_alive"],
        "cloud_calls": ["write_bucket", "read_property", "call_device", "call_endpoint"],
        "connect_params": ["connect_params", "keep_alive"],
    }
    for i, (name, names) in enumerate(groups.items()):
        # Frame limit 8 + 63 = 71 (all vectors fit), chunk seed varies per file.
        write("frame_decode", name, bytes([63, 7 + 16 * i]) + b"".join(messages[n] for n in names))
    # A small limit, so the oversize path is covered from the start.
    write("frame_decode", "small_limit", bytes([8, 3]) + messages["keep_alive"] + messages["run_output"])


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
