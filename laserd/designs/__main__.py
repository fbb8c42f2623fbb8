"""Convert a design file from the command line: ``python -m laserd.designs FILE [options]``.

The same pipeline the daemon's processing worker runs, for trying a file and its settings
without the web UI: writes the G-code (and a preview PNG with ``--preview``) and prints the
report as JSON (statistics, warnings, the layers with their settings, the placed extent).
Layer settings can be given as a JSON file in the API's shape (``--layers``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from laserd.designs.convert import convert_file
from laserd.designs.errors import DesignError


def _kind(path: Path) -> str:
    if path.suffix.lower() == ".dxf":
        return "dxf"
    return "svg"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m laserd.designs", description=__doc__)
    ap.add_argument("file", type=Path, help="an .svg, .svgz or .dxf file")
    ap.add_argument("--gcode", type=Path, help="output G-code (default: FILE.gcode)")
    ap.add_argument("--preview", type=Path, help="also draw the toolpath into this PNG")
    ap.add_argument("--bed", default="400x400", help="bed size in mm, WxH (default 400x400)")
    ap.add_argument("--max-power-s", type=int, default=1000, help="controller $30 (1000)")
    ap.add_argument("--x", type=float, help="lower-left corner on the bed, mm (with --y)")
    ap.add_argument("--y", type=float)
    ap.add_argument("--width", type=float, help="placed width, mm (aspect kept alone)")
    ap.add_argument("--height", type=float, help="placed height, mm (aspect kept alone)")
    ap.add_argument("--rotate", type=float, default=0.0, help="degrees, counter-clockwise")
    ap.add_argument("--mirror", action="store_true", help="mirror left-right")
    ap.add_argument("--tolerance", type=float, default=0.02, help="curve tolerance, mm")
    ap.add_argument("--layers", type=Path, help="JSON list of layer settings (API shape)")
    args = ap.parse_args(argv)
    try:
        bx, by = (float(v) for v in args.bed.lower().split("x"))
    except ValueError:
        ap.error("--bed takes WIDTHxHEIGHT in mm, for example 400x300")
    placement = {
        "x_mm": args.x, "y_mm": args.y, "width_mm": args.width, "height_mm": args.height,
        "rotation_deg": args.rotate, "mirror_x": args.mirror,
    }  # fmt: skip
    layers = json.loads(args.layers.read_text()) if args.layers else None
    out = args.gcode or args.file.with_suffix(".gcode")
    try:
        report = convert_file(
            args.file, _kind(args.file), out,
            bed_mm=(bx, by), max_power_s=args.max_power_s, layers=layers,
            placement={k: v for k, v in placement.items() if v is not None},
            tolerance_mm=args.tolerance, preview_out=args.preview,
        )  # fmt: skip
    except DesignError as exc:
        print(json.dumps({"error": exc.code, "message": exc.message}), file=sys.stderr)
        return 1
    stats = {k: v for k, v in report.stats.items() if k != "estimate_checkpoints"}
    print(json.dumps({"gcode": str(out), "stats": stats, "warnings": report.warnings,
                      "layers": report.layers, "design": report.design}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
