"""Regenerate the English word list shipped in the package (src/opinionbench/validation/english_words.txt.gz).

Source: Debian's `wamerican` package (/usr/share/dict/words: SCOWL size-50 American English,
public domain / permissive licence), a reviewed word list available offline. We lower-case it,
keep alphabetic words (apostrophes allowed: "don't", "nation's") and ship the sorted result
gzipped, so validation never depends on what a machine has installed. Run after
`apt-get install wamerican`:  .venv/bin/python scripts/make_wordlist.py
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

SOURCE = Path("/usr/share/dict/words")
TARGET = Path(__file__).resolve().parents[1] / "src" / "opinionbench" / "validation" / "english_words.txt.gz"
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def main() -> int:
    if not SOURCE.exists():
        print(f"{SOURCE} not found: install Debian's wamerican package (apt-get install wamerican)", file=sys.stderr)
        return 1
    words = sorted({w for w in (line.strip().lower() for line in SOURCE.read_text(encoding="utf-8", errors="ignore").splitlines())
                    if WORD.fullmatch(w)})
    with gzip.GzipFile(TARGET, "wb", mtime=0) as fh:  # mtime=0: the same input gives the same bytes
        fh.write(("\n".join(words) + "\n").encode())
    print(f"{len(words)} words -> {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
