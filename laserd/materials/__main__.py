"""Make a material test grid from the command line: ``python -m laserd.materials test-grid``.

Writes the grid's G-code (and a preview PNG with ``--preview``, the grid as an SVG design
with ``--svg``) through the design pipeline and prints every cell's values as JSON: the same
grid ``POST /projects/{id}/test-grid`` makes in the daemon, for trying settings without it or
for another sender.

Ranges are ``MIN:MAX:STEPS`` (power in %, speed in mm/min), for example::

    python -m laserd.materials test-grid --operation fill --power 10:100:10 \\
        --speed 500:5000:10 --x 20 --y 20 --gcode grid.gcode --preview grid.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from laserd.designs import DesignError, design_to_gcode
from laserd.materials.testgrid import TestGridRequest, build_test_grid, grid_svg


def _range(text: str) -> dict[str, Any]:
    try:
        lo, hi, steps = text.split(":")
        return {"min": float(lo), "max": float(hi), "steps": int(steps)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN:MAX:STEPS") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m laserd.materials", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)
    grid = sub.add_parser("test-grid", help="power × speed grid with labelled cells")
    grid.add_argument("--operation", choices=["fill", "score", "cut"], default="fill")
    grid.add_argument("--power", type=_range, required=True, help="MIN:MAX:STEPS in %%")
    grid.add_argument("--speed", type=_range, required=True, help="MIN:MAX:STEPS in mm/min")
    grid.add_argument("--cell", type=float, default=10.0, help="cell side, mm (10)")
    grid.add_argument("--gap", type=float, default=3.0, help="space between cells, mm (3)")
    grid.add_argument("--no-labels", action="store_true", help="leave the values off")
    grid.add_argument("--passes", type=int, default=1)
    grid.add_argument("--x", type=float, help="lower-left corner on the bed, mm (with --y)")
    grid.add_argument("--y", type=float)
    grid.add_argument("--bed", default="400x400", help="bed size in mm, WxH (400x400)")
    grid.add_argument("--max-power-s", type=int, default=1000, help="controller $30 (1000)")
    grid.add_argument("--gcode", type=Path, default=Path("test-grid.gcode"))
    grid.add_argument("--preview", type=Path, help="also draw the toolpath into this PNG")
    grid.add_argument("--svg", type=Path, help="also write the grid as an SVG design")
    args = ap.parse_args(argv)
    try:
        bx, by = (float(v) for v in args.bed.lower().split("x"))
    except ValueError:
        ap.error("--bed takes WIDTHxHEIGHT in mm, for example 400x300")
    body: dict[str, Any] = {
        "operation": args.operation, "power_pct": args.power, "speed_mm_min": args.speed,
        "cell_mm": args.cell, "gap_mm": args.gap, "labels": not args.no_labels,
        "passes": args.passes,
    }  # fmt: skip
    if args.x is not None or args.y is not None:
        body["placement"] = {"x_mm": args.x, "y_mm": args.y}
    try:
        req = TestGridRequest.model_validate(body)
        result = build_test_grid(req)
        if args.svg is not None:
            args.svg.write_bytes(grid_svg(result))
        report = design_to_gcode(
            result.design, args.gcode, bed_mm=(bx, by), max_power_s=args.max_power_s,
            placement=req.placement, preview_out=args.preview,
        )  # fmt: skip
    except ValidationError as exc:
        print(json.dumps({"error": "validation_error", "message": str(exc)}), file=sys.stderr)
        return 2
    except DesignError as exc:
        print(json.dumps({"error": exc.code, "message": exc.message}), file=sys.stderr)
        return 1
    cells = [
        {k: c[k] for k in ("row", "col", "power_pct", "speed_mm_min")} for c in result.cells
    ]
    print(json.dumps({"gcode": str(args.gcode), "stats": report.stats,
                      "warnings": report.warnings, "grid": cells}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
