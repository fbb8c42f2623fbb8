"""SVG → raw paths in mm, through svgelements, behind a safety pre-scan.

svgelements (what MeerK40t and vpype use) resolves what real files hold: nested transforms,
``viewBox`` with ``preserveAspectRatio`` and physical units, ``use``/``defs``, CSS in
``<style>`` and classes, ``display:none``. It reads with ``xml.etree``'s expat parser, which
expands internal entities and would accept a ``DOCTYPE``, so the bytes are checked first:

- an entity declaration (``<!ENTITY``: billion laughs, or an external entity pointing at
  ``/etc/passwd`` or a URL) is refused before any XML parser sees the text; a plain
  ``<!DOCTYPE svg PUBLIC …>`` without an internal subset is removed (expat never fetches it);
- size, element count and the decompressed size of ``.svgz`` are bounded;
- a namespace prefix that the document uses without declaring it (``sodipodi:`` or
  ``inkscape:`` attributes pasted out of context, which expat refuses as "unbound prefix")
  is declared on the root element and the file is read; anything else that is not
  well-formed XML is refused with expat's message and position;
- ``<image>`` elements are read only from ``data:`` URIs (decoded here with Pillow, bounded in
  pixels); an external ``href`` is never opened and is reported instead.

``<text>`` is skipped with a warning naming it; ``visibility:hidden`` shapes are skipped;
``clip-path`` is applied to shapes (:mod:`laserd.designs.clip`: outlines cut to what the clip
shows, fills intersected with it), and reported where it cannot be (``objectBoundingBox``
units, images), so the burn never silently differs from the drawing.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import math
import re
import zlib
from pathlib import Path as FsPath
from typing import Any
from xml.etree.ElementTree import ParseError

import numpy as np
import svgelements as se
from PIL import Image

from laserd.designs.clip import ClipRegion, clip_area, clip_outline, intersect_regions
from laserd.designs.errors import DesignError
from laserd.designs.flatten import (
    chords_for_arc,
    chords_for_cubic,
    chords_for_quadratic,
    simplify,
)
from laserd.designs.geometry import FillRule, ImageItem, affine
from laserd.designs.layers import RawDesign, RawPath

MM_PER_PX = 25.4 / 96.0  # SVG user units are CSS pixels at 96 per inch
MAX_SVG_BYTES = 32 * 1024 * 1024
MAX_ELEMENTS = 200_000
MAX_IMAGE_PIXELS = 40_000_000
#: Deeper nesting than any drawing program writes; the parser and the walk recurse per level.
MAX_DEPTH = 200
#: Text encodings the pre-scan can read as ASCII-compatible bytes.
_ASCII_COMPATIBLE = re.compile(
    rb"^(utf-?8|us-ascii|ascii|iso-8859-\d+|latin-?1|windows-125\d|cp125\d)$", re.I
)
_XML_DECL_ENCODING = re.compile(rb"<\?xml[^>]*encoding\s*=\s*[\"']([^\"']+)[\"']", re.I)
_DOCTYPE = re.compile(rb"<!DOCTYPE\b", re.I)
_DOCTYPE_SIMPLE = re.compile(rb"<!DOCTYPE\s[^\[>]*>", re.I)
_PREFIX_USE = re.compile(rb"[<\s/]([A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*")
_PREFIX_DECL = re.compile(rb"xmlns:([A-Za-z_][\w.-]*)\s*=")
#: An element's start (``<g …>``), end (``</g>``) or both (``<g …/>``); comments, CDATA and
#: processing instructions do not match (they start with ``!`` or ``?``).
_TAG = re.compile(rb"<(/)?[A-Za-z_][^>]*?(/)?>")
_ROOT_SVG = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?svg)\b")


def read_svg(src: FsPath, tolerance_mm: float) -> RawDesign:
    """Parse the SVG at ``src`` into raw paths (mm, Y up, page lower-left at the origin)."""
    data = _checked_bytes(FsPath(src).read_bytes())
    doc = _parse(data)
    try:
        return _collect(doc, tolerance_mm)
    except RecursionError as exc:
        raise DesignError("the SVG refers to itself (a <use> cycle)") from exc
    except (ZeroDivisionError, ValueError, np.linalg.LinAlgError) as exc:
        raise DesignError(f"the SVG cannot be read: {exc or type(exc).__name__}") from exc


# --------------------------------------------------------------------------- pre-scan


def _checked_bytes(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":  # .svgz
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(MAX_SVG_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DesignError(f"the compressed SVG cannot be read: {exc}") from exc
    if len(data) > MAX_SVG_BYTES:
        raise DesignError(
            f"the SVG is larger than {MAX_SVG_BYTES // (1024 * 1024)} MB; "
            "simplify it or split it into several files"
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DesignError("the SVG says it is UTF-16 but is not") from exc
        data = re.sub(r"^\ufeff?(<\?xml[^>]*?)encoding=[\"'][^\"']*[\"']", r"\1", text).encode()
    elif data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    if b"\x00" in data:
        raise DesignError("the SVG holds NUL bytes: it is not a text file")
    m = _XML_DECL_ENCODING.search(data[:200])
    if m and not _ASCII_COMPATIBLE.match(m.group(1)):
        raise DesignError(f"the SVG's text encoding {m.group(1).decode(errors='replace')!r} "
                          "is not supported; save it as UTF-8")  # fmt: skip
    if b"<!ENTITY" in data.upper():
        raise DesignError(
            "the SVG declares XML entities (<!ENTITY …>), which laserd never expands: they "
            "can read local files or blow up in memory. Save it as plain SVG (Inkscape: "
            "Save As → Plain SVG; Illustrator: SVG without 'Preserve editing capabilities')",
            code="unsafe_design",
        )
    if _DOCTYPE.search(data):
        simple = _DOCTYPE_SIMPLE.search(data)
        if simple is None:
            raise DesignError(
                "the SVG has a DOCTYPE with an internal subset, which laserd does not read; "
                "save it as plain SVG",
                code="unsafe_design",
            )
        data = data[: simple.start()] + data[simple.end() :]
    elements = data.count(b"<")
    if elements > MAX_ELEMENTS:
        raise DesignError(
            f"the SVG has about {elements} elements; the limit is {MAX_ELEMENTS}"
        )
    depth = _max_depth(data)
    if depth > MAX_DEPTH:
        raise DesignError(f"the SVG nests elements {depth} deep; the limit is {MAX_DEPTH}")
    return data


def _max_depth(data: bytes) -> int:
    """How deeply elements nest (opening tags minus closing ones, at the worst point)."""
    depth = worst = 0
    for m in _TAG.finditer(data):
        if m.group(1):
            depth -= 1
        elif not m.group(2):
            depth += 1
            worst = max(worst, depth)
    return worst


def _declare_missing_prefixes(data: bytes) -> bytes | None:
    """The document with its undeclared namespace prefixes declared on the root element."""
    used = {m.group(1) for m in _PREFIX_USE.finditer(data)}
    declared = {m.group(1) for m in _PREFIX_DECL.finditer(data)} | {b"xml", b"xmlns"}
    missing = sorted(used - declared)
    root = _ROOT_SVG.search(data)
    if not missing or root is None:
        return None
    decl = b"".join(b' xmlns:%s="urn:laserd:undeclared:%s"' % (p, p) for p in missing)
    return data[: root.end()] + decl + data[root.end() :]


def _parse(data: bytes) -> se.SVG:
    try:
        return _svgelements(data)
    except RecursionError as exc:
        raise DesignError("the SVG refers to itself (a <use> cycle)") from exc
    except ParseError as exc:
        if "unbound prefix" in str(exc):
            fixed = _declare_missing_prefixes(data)
            if fixed is not None:
                try:
                    return _svgelements(fixed)
                except ParseError as exc2:
                    exc = exc2
        raise DesignError(f"the SVG is not well-formed XML: {exc}") from exc


def _svgelements(data: bytes) -> se.SVG:
    try:
        doc = se.SVG.parse(io.BytesIO(data), reify=False, ppi=96.0)
    except ParseError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as exc:
        raise DesignError(f"the SVG cannot be read: {exc}") from exc
    if not isinstance(doc, se.SVG):
        raise DesignError("the file's root element is not <svg>")
    return doc


# --------------------------------------------------------------------------- elements


def _describe(e: se.SVGElement) -> str:
    tag = type(e).__name__.lower().replace("svgtext", "text").replace("simpleline", "line")
    eid = getattr(e, "id", None)
    return f"{tag}#{eid}" if eid else tag


def _paint(color: se.Color | None, opacity_key: str, values: dict[str, str]) -> str | None:
    if color is None or color.value is None:
        return None
    try:
        if float(values.get(opacity_key, "1")) <= 0:
            return None
    except ValueError:
        pass
    if color.alpha == 0:
        return None
    return f"#{color.red:02x}{color.green:02x}{color.blue:02x}"


class _Reader:
    """Walks the parsed tree, carrying the clip region of the enclosing groups down."""

    def __init__(self, doc: se.SVG, tol_mm: float) -> None:
        self.tol_mm = tol_mm
        self.tol_px = tol_mm / MM_PER_PX
        width_mm = float(doc.width) * MM_PER_PX
        height_mm = float(doc.height) * MM_PER_PX
        # px (Y down, from the page's top-left) → mm (Y up, from the page's bottom-left).
        self.to_mm = affine(MM_PER_PX, 0, 0, -MM_PER_PX, 0, height_mm)
        # Clip shapes are parsed inside <defs> (under the viewport transform); they are drawn in
        # the user space of the element that references them, so that transform is taken out.
        vb = doc.viewbox_transform if getattr(doc, "viewbox", None) is not None else ""
        v = se.Matrix(vb) if vb else se.Matrix()
        self.v_inv = np.linalg.inv(affine(v.a, v.b, v.c, v.d, v.e, v.f))
        self.raw = RawDesign(width_mm=width_mm, height_mm=height_mm)
        self.texts: list[str] = []
        self.unclipped: list[str] = []
        self.clipped_away: list[str] = []
        self.external: list[str] = []
        self.broken: list[str] = []
        self.hidden = 0

    def walk(self, node: Any, region: ClipRegion | None) -> None:
        for e in node:
            r = region
            cp = getattr(e, "clip_path", None)
            if cp is not None:
                own = self._clip_region(e, cp)
                if own is None:
                    self.unclipped.append(_describe(e))
                else:
                    r = own if r is None else intersect_regions(r, own)
            if isinstance(e, se.SVGText):
                label = (e.text or "").strip()
                self.texts.append(f"{_describe(e)} {label[:40]!r}" if label else _describe(e))
            elif isinstance(e, list):  # groups, <use>, nested <svg>
                self.walk(e, r)
            elif isinstance(e, se.SVGImage | se.Shape):
                values = getattr(e, "values", {}) or {}
                if str(values.get("visibility", "visible")).lower() in ("hidden", "collapse"):
                    self.hidden += 1
                elif isinstance(e, se.SVGImage):
                    if r is not None:
                        self.unclipped.append(_describe(e))
                    item = _image(e, self.to_mm, self.external)
                    if item is not None:
                        self.raw.images.append(item)
                else:
                    self._shape(e, values, r)

    def _mm(self, pts: np.ndarray, matrix: np.ndarray | None = None) -> np.ndarray:
        m = self.to_mm if matrix is None else self.to_mm @ matrix
        mm: np.ndarray = (np.column_stack([pts, np.ones(len(pts))]) @ m.T)[:, :2]
        return mm

    def _clip_region(self, e: Any, cp: Any) -> ClipRegion | None:
        """The clip path's area in mm, or None when it cannot be applied (reported)."""
        if str(getattr(cp, "values", {}).get("clipPathUnits", "")) == "objectBoundingBox":
            return None
        t = getattr(e, "transform", None) or se.Matrix()
        to_user = affine(t.a, t.b, t.c, t.d, t.e, t.f) @ self.v_inv
        rings: list[np.ndarray] = []
        rule: FillRule = "nonzero"
        for k in cp:
            if not isinstance(k, se.Shape):
                continue
            if str(k.values.get("clip-rule", "")).lower() == "evenodd":
                rule = "evenodd"
            for pts, _closed, _r in _subpaths(k, self.tol_px / 2.0):
                if len(pts) >= 3 and np.all(np.isfinite(pts)):
                    rings.append(self._mm(pts, to_user))
        return ClipRegion(rings, rule)

    def _shape(self, e: se.Shape, values: dict[str, Any], region: ClipRegion | None) -> None:
        stroke = _paint(e.stroke, "stroke-opacity", values)
        fill = _paint(e.fill, "fill-opacity", values)
        if stroke is None and fill is None:
            return
        width = float(e.implicit_stroke_width or 0.0) * MM_PER_PX if stroke is not None else 0.0
        evenodd = str(values.get("fill-rule", "")).lower() == "evenodd"
        rule: FillRule = "evenodd" if evenodd else "nonzero"
        source = _describe(e)
        subs: list[tuple[np.ndarray, bool]] = []
        for pts, closed, reducible in _subpaths(e, self.tol_px / 2.0):
            if not np.all(np.isfinite(pts)):
                self.broken.append(source)
                continue
            mm = self._mm(pts)
            if reducible:
                mm = simplify(mm, self.tol_mm / 2.0, closed)
            if len(mm) < 2 and not closed:
                continue
            subs.append((mm, closed))
        paths = self.raw.paths
        if region is None:
            for mm, closed in subs:
                paths.append(RawPath(mm, closed, stroke, fill, width, rule, source))
            return
        before = len(paths)
        if stroke is not None:
            for mm, closed in subs:
                for piece, still_closed in clip_outline(mm, closed, region):
                    paths.append(RawPath(piece, still_closed, stroke, None, width, rule, source))
        if fill is not None:
            rings = [mm for mm, closed in subs if closed and len(mm) >= 3]
            for ring in clip_area(rings, rule, region):
                paths.append(RawPath(ring, True, None, fill, 0.0, "evenodd", source))
        if len(paths) == before:
            self.clipped_away.append(source)

    def finish(self) -> RawDesign:
        raw = self.raw
        if self.texts:
            texts = self.texts
            more = f" and {len(texts) - 5} more" if len(texts) > 5 else ""
            shown = ", ".join(texts[:5]) + more
            raw.warnings.append(f"text skipped (convert text to paths): {shown}")
        if self.unclipped:
            names = ", ".join(sorted(set(self.unclipped)))
            raw.warnings.append("clip-path is not applied (objectBoundingBox units, or an "
                                f"image), these are burned whole: {names}")  # fmt: skip
        if self.clipped_away:
            raw.warnings.append("wholly outside their clip-path, not burned: "
                                + ", ".join(sorted(set(self.clipped_away))[:10]))  # fmt: skip
        if self.external:
            raw.warnings.append(
                "images that link to other files are not read (embed them): "
                + ", ".join(self.external)
            )
        if self.hidden:
            raw.warnings.append(f"{self.hidden} hidden element(s) skipped")
        if self.broken:
            raw.warnings.append(
                "shapes with coordinates that are not numbers are skipped: "
                + ", ".join(sorted(set(self.broken))[:10])
            )
        return raw


def _collect(doc: se.SVG, tol_mm: float) -> RawDesign:
    reader = _Reader(doc, tol_mm)
    reader.walk(doc, None)
    return reader.finish()


def _subpaths(e: se.Shape, tol: float) -> list[tuple[np.ndarray, bool, bool]]:
    """Each subpath of a shape as points (px), closed or not, and whether merging nearly
    collinear points can shorten it (not for arcs: their chords are already as long as the
    tolerance allows)."""
    if type(e) in (se.Circle, se.Ellipse):
        # Straight from the equation: the same points as its four arcs, far cheaper.
        m = e.transform
        lin = np.array([[m.a, m.c], [m.b, m.d]], dtype=np.float64)
        rx, ry = abs(float(e.rx)), abs(float(e.ry))
        stretch = float(np.linalg.norm(lin, 2)) if np.all(np.isfinite(lin)) else 0.0
        if stretch <= 0 or max(rx, ry) <= 0:
            return []
        n = max(8, chords_for_arc(stretch * max(rx, ry), 2 * math.pi, tol))
        t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
        local = np.column_stack([float(e.cx) + rx * np.cos(t), float(e.cy) + ry * np.sin(t)])
        return [(local @ lin.T + np.array([m.e, m.f]), True, False)]
    return _flatten(e.segments(transformed=True), tol)


def _flatten(segments: Any, tol: float) -> list[tuple[np.ndarray, bool, bool]]:
    """Each subpath as points (px), whether it is closed, and whether it can be reduced."""
    out: list[tuple[np.ndarray, bool, bool]] = []
    pts: list[np.ndarray] = []
    closed = False
    reducible = False

    def flush() -> None:
        nonlocal pts, closed, reducible
        if pts:
            arr = np.vstack(pts)
            if len(arr) >= 2 or closed:
                out.append((arr, closed, reducible and len(arr) > 2))
        pts, closed, reducible = [], False, False

    for seg in segments:
        if isinstance(seg, se.Move):
            flush()
            if seg.end is not None:
                pts = [np.array([[seg.end.x, seg.end.y]])]
            continue
        if seg.start is None or seg.end is None:
            continue
        if not pts:
            pts = [np.array([[seg.start.x, seg.start.y]])]
        if isinstance(seg, se.Close):
            closed = True
            flush()
            continue
        if isinstance(seg, se.Line):
            pts.append(np.array([[seg.end.x, seg.end.y]]))
            reducible = True
            continue
        if isinstance(seg, se.CubicBezier):
            ctrl = np.array([[p.x, p.y] for p in (seg.start, seg.control1, seg.control2, seg.end)])
            n = chords_for_cubic(ctrl, tol)
            reducible = True
        elif isinstance(seg, se.QuadraticBezier):
            ctrl = np.array([[p.x, p.y] for p in (seg.start, seg.control, seg.end)])
            n = chords_for_quadratic(ctrl, tol)
            reducible = True
        elif isinstance(seg, se.Arc):
            n = chords_for_arc(max(abs(seg.rx), abs(seg.ry)), float(seg.sweep), tol)
        else:
            pts.append(np.array([[seg.end.x, seg.end.y]]))
            continue
        ts = np.linspace(0.0, 1.0, n + 1)[1:]
        pts.append(np.asarray(seg.npoint(ts), dtype=np.float64).reshape(-1, 2))
    flush()
    return out


def _image(e: se.SVGImage, to_mm: np.ndarray, external: list[str]) -> ImageItem | None:
    url = (e.url or "").strip()
    if not url.startswith("data:"):
        external.append(_describe(e) + (f" ({url[:60]})" if url else ""))
        return None
    header, _, payload = url.partition(",")
    try:
        if ";base64" in header:
            blob = base64.b64decode(re.sub(r"\s+", "", payload), validate=False)
        else:
            from urllib.parse import unquote_to_bytes

            blob = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise DesignError(f"{_describe(e)}: the embedded image data is damaged") from exc
    try:
        im = Image.open(io.BytesIO(blob))
        w, h = im.size
        if w * h > MAX_IMAGE_PIXELS or w <= 0 or h <= 0:
            raise DesignError(
                f"{_describe(e)}: the embedded image is {w}×{h} pixels; "
                f"the limit is {MAX_IMAGE_PIXELS // 1_000_000} MP"
            )
        im.load()
    except DesignError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DesignError(f"{_describe(e)}: the embedded image cannot be decoded: {exc}") from exc
    e.image = im
    e.set_values_by_image()  # maps the image's pixels into x, y, width, height (+ transform)
    m = e.transform
    px_to_user = affine(m.a, m.b, m.c, m.d, m.e, m.f)
    matrix = to_mm @ px_to_user
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix[:2, :2])) < 1e-12:
        return None
    if math.isclose(float(np.linalg.det(matrix[:2, :2])), 0.0):
        return None
    return ImageItem(im, matrix, 0, _describe(e))
