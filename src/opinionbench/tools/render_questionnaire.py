"""`opinionbench render-questionnaire SAV PDF`: a topline questionnaire (scanned by default) from a wave.

This is how `data/sample/W900_questionnaire.pdf` was made (`opinionbench render-questionnaire
data/sample/W900.sav data/sample/W900_questionnaire.pdf`); real users bring Pew's own PDFs.
`--style random --seed N` draws a layout and scan from the seed (`questionnaire.random_style`);
the drawn dimensions are printed and kept in the PDF's keywords.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sav", type=Path, help="wave microdata (.sav)")
    parser.add_argument("pdf", type=Path, help="questionnaire PDF to write")
    parser.add_argument("--clean", action="store_true", help="born-digital PDF instead of a degraded scan")
    parser.add_argument("--dpi", type=int, default=200, help="scan resolution, 150-300 (default 200)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the scan degradation (with --style random: of the whole layout)")
    parser.add_argument("--max-questions", type=int, default=None)
    parser.add_argument("--style", default="topline",
                        help="layout: topline | bracketed | numbered | trend | matrix | two_column | random")


def run(args: argparse.Namespace) -> int:
    from opinionbench.questionnaire.render import render_wave_questionnaire

    pages = render_wave_questionnaire(args.sav, args.pdf, scanned=not args.clean, dpi=args.dpi, seed=args.seed,
                                      max_questions=args.max_questions, style=args.style)
    if args.style == "random":
        from opinionbench.questionnaire.random_style import draw_style

        _, scan, dims = draw_style(args.seed)
        print(f"{args.pdf}: {pages} pages ({'clean' if args.clean else f'scanned at {scan.dpi} dpi'}), random layout "
              + " ".join(f"{k}={v}" for k, v in dims.items()))
        return 0
    print(f"{args.pdf}: {pages} pages ({'clean' if args.clean else f'scanned at {args.dpi} dpi'})")
    return 0
