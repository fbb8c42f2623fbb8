"""Content sniffing of design uploads: SVG (plain, with prolog, prefixed, gzipped) and DXF."""

from __future__ import annotations

import gzip
from pathlib import Path

import ezdxf
import pytest

from laserd.designs.sniff import HEAD_BYTES, design_kind, looks_like_dxf, looks_like_svg
from tests.unit.designs_util import DATA


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.svg")))
def test_real_svgs_are_recognised(name: str) -> None:
    assert design_kind((DATA / name).read_bytes()[:HEAD_BYTES]) == "svg"


@pytest.mark.parametrize(
    "head",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- made by hand -->\n<svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd"><svg>',
        b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg">',
        gzip.compress(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'),
        '\ufeff<svg xmlns="http://www.w3.org/2000/svg"/>'.encode("utf-16-le"),
    ],
)
def test_svg_variants(head: bytes) -> None:
    assert looks_like_svg(head)


@pytest.mark.parametrize(
    "head",
    [
        b"<html><body><svg></svg></body></html>",
        b"G21G90\nG0X1Y1\n",
        b"\x89PNG\r\n\x1a\n",
        b"<svgx>",
        b"",
        b"\x1f\x8b garbage",
    ],
)
def test_not_svg(head: bytes) -> None:
    assert not looks_like_svg(head)


def test_dxf_from_ezdxf_and_binary_marker(tmp_path: Path) -> None:
    doc = ezdxf.new("R2010")
    doc.modelspace().add_line((0, 0), (1, 1))
    doc.saveas(tmp_path / "d.dxf")
    head = (tmp_path / "d.dxf").read_bytes()[:HEAD_BYTES]
    assert design_kind(head) == "dxf"
    assert looks_like_dxf(b"999\r\nmade by a CAD program\r\n  0\r\nSECTION\r\n  2\r\nENTITIES\r\n")
    assert looks_like_dxf(b"AutoCAD Binary DXF\r\n\x1a\x00\x00")
    assert not looks_like_dxf(b"0\nSECTIONS\n")
    assert not looks_like_dxf(b"G0 X0\n")
    assert design_kind(b"G0 X0\n") is None
