#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/nfc_cases.json: random strings rich in combining marks,
Hangul, singletons and composition exclusions, with their NFC and NFD from Python's
unicodedata (an implementation independent of tpro's). Deterministic (fixed seed).

Run: python3 tests/tokenizer/gen_nfc_cases.py > tests/fixtures/tokenizer/nfc_cases.json
"""
import json
import random
import sys
import unicodedata as ud

rng = random.Random(20240531)
BASES = "aeiouAEIOUnNcCsSzZyYwWgGkKrRlL" + "αεηιουωΑΕΗΙΟΥΩ" + "аеиоуАЕИОУ"
MARKS = [0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x307, 0x308, 0x309, 0x30A, 0x30B, 0x30C, 0x31B,
         0x323, 0x324, 0x325, 0x327, 0x328, 0x32D, 0x330, 0x331, 0x338, 0x342, 0x345, 0x3099, 0x309A]
SPECIAL = [0x212B, 0x2126, 0x212A, 0x0344, 0x0958, 0x0F73, 0x1E9B, 0xFB1D, 0x2ADC, 0x0340, 0x0374,
           0x1F71, 0x0387, 0x304C, 0x30AC, 0x304B, 0x30AB, 0xF900, 0x2F800, 0x0CCB, 0x0DDA, 0x1B3B, 0x110AB]


def random_piece() -> str:
    r = rng.random()
    if r < 0.45:
        return rng.choice(BASES) + "".join(chr(rng.choice(MARKS)) for _ in range(rng.randint(0, 3)))
    if r < 0.6:
        return chr(rng.randint(0xAC00, 0xD7A3))
    if r < 0.7:  # conjoining jamo: L V (T)
        s = chr(rng.randint(0x1100, 0x1112)) + chr(rng.randint(0x1161, 0x1175))
        return s + (chr(rng.randint(0x11A8, 0x11C2)) if rng.random() < 0.5 else "")
    if r < 0.85:
        return chr(rng.choice(SPECIAL))
    if r < 0.95:
        return ud.normalize("NFD", chr(rng.randint(0xC0, 0x17F)))
    return rng.choice([" ", "x", "!", "日", "\U0001F600"])


def main() -> None:
    cases = []
    for _ in range(1500):
        s = "".join(random_piece() for _ in range(rng.randint(1, 6)))
        cases.append({"in": s, "nfc": ud.normalize("NFC", s), "nfd": ud.normalize("NFD", s)})
    json.dump({"unicode": ud.unidata_version, "cases": cases}, sys.stdout, ensure_ascii=True, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
