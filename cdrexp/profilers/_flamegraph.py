"""A self-contained interactive flamegraph SVG from collapsed stacks.

py-spy writes one output format per run; it records speedscope here and this renders
the SVG from the very same samples, in the style of Brendan Gregg's flamegraph.pl:
width = time, the root at the bottom, click a frame to zoom, Ctrl+F (or "Search") to
highlight frames matching a regular expression. No PyPI package renders collapsed stacks
and is maintained, hence this small renderer.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import Callable, Optional
from xml.sax.saxutils import escape, quoteattr

WIDTH = 1200
PAD = 10
FRAME_H = 16
TOP = 60          # room for the title and buttons
BOTTOM = 30       # room for the details line
CHAR_W = 7.0      # monospace 12px, roughly
MIN_PX = 0.1      # narrower frames are dropped, as flamegraph.pl does


class _Node:
    __slots__ = ("value", "children")

    def __init__(self) -> None:
        self.value = 0.0
        self.children: dict[str, _Node] = {}


def _tree(stacks: Counter) -> _Node:
    root = _Node()
    for stack, w in stacks.items():
        root.value += w
        node = root
        for label in stack:
            node = node.children.setdefault(label, _Node())
            node.value += w
    return root


def _color(label: str) -> str:
    h = int(hashlib.md5(label.encode()).hexdigest()[:8], 16)
    vary = (h % 1000) / 1000
    if label.startswith("process "):
        return f"hsl(0,0%,{72 + 10 * vary:.0f}%)"
    if "cdrexp/" in label:
        hue = 20 + 15 * vary              # our code: orange
    elif "[kernel" in label:
        hue = 265 + 20 * vary             # the kernel (perf): violet
    elif ".so" in label or ".c:" in label or "(" not in label or "[unknown]" in label:
        hue = 185 + 20 * vary             # native code: aqua
    elif "site-packages" in label or label.split("(")[-1].split("/")[0] in _LIBS:
        hue = 48 + 10 * vary              # third-party libraries: yellow
    else:
        hue = 0 + 12 * vary               # the standard library: red
    return f"hsl({hue:.0f},{75 + 15 * vary:.0f}%,{60 + 8 * vary:.0f}%)"


_LIBS = {"numpy", "pyarrow", "omegaconf", "hydra", "psutil", "rich", "zstandard", "dask",
         "distributed", "scipy", "pandas", "memray"}


def _fit(label: str, px: float) -> str:
    n = int((px - 6) / CHAR_W)
    if n < 3:
        return ""
    return label if len(label) <= n else label[:n - 2] + ".."


Path = tuple[str, ...]


def render_svg(stacks: Counter, title: str = "Flame Graph", subtitle: str = "",
               unit: str = "s", color: Optional[Callable[[Path], str]] = None,
               describe: Optional[Callable[[Path, float, float], str]] = None,
               icicle: bool = False, header: str = "", header_h: int = 0) -> str:
    """SVG text of the flamegraph of ``stacks`` ({tuple of labels root first: weight}).

    ``color(path)`` and ``describe(path, value, total)`` (the tooltip) override the
    defaults for each frame, ``path`` being its labels from the root: the differential
    flamegraph colours a frame by how its share changed. ``icicle`` puts the roots at
    the top (the first screen then shows the shallow frames, not the bottom of a tall
    image); ``header`` is SVG drawn below the title, ``header_h`` pixels high, whose
    elements may call ``zoomName(label)`` to zoom on a frame."""
    root = _tree(stacks)
    total = root.value or 1.0
    scale = (WIDTH - 2 * PAD) / total
    rows: list[tuple[Path, float, float, int]] = []
    max_depth = 0

    def walk(node: _Node, x: float, depth: int, path: Path) -> None:
        nonlocal max_depth
        for label, child in sorted(node.children.items()):
            w_px = child.value * scale
            if w_px >= MIN_PX:
                max_depth = max(max_depth, depth)
                rows.append((path + (label,), x, child.value, depth))
                walk(child, x, depth + 1, path + (label,))
            x += child.value

    walk(root, 0.0, 0, ())
    sub_lines = subtitle.split("\n")       # a long subtitle comes as several lines
    top = TOP + header_h + 14 * (len(sub_lines) - 1)
    height = top + (max_depth + 1) * FRAME_H + BOTTOM
    out = ['<?xml version="1.0" standalone="no"?>',
           f'<svg version="1.1" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg" '
           f'onload="init(evt)">',
           '<style>text{font-family:monospace;font-size:12px;fill:#000}'
           ' g.f:hover rect{stroke:#000;stroke-width:0.5;cursor:pointer}'
           ' .btn{cursor:pointer;fill:#333} #title{font-size:17px}</style>',
           f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#f6f6f0"/>',
           f'<text id="title" x="{WIDTH / 2}" y="22" text-anchor="middle">'
           f'{escape(title)}</text>',
           *(f'<text x="{WIDTH / 2}" y="{40 + 14 * i}" text-anchor="middle" fill="#555">'
             f'{escape(line)}</text>' for i, line in enumerate(sub_lines)),
           f'<text id="reset" class="btn" x="{PAD}" y="40" visibility="hidden">'
           'Reset Zoom</text>',
           f'<text id="search" class="btn" x="{WIDTH - PAD - 110}" y="40">Search (Ctrl+F)'
           '</text>',
           f'<text id="matched" x="{WIDTH - PAD - 110}" y="{height - 10}"> </text>',
           f'<text id="details" x="{PAD}" y="{height - 10}"> </text>',
           header,
           f'<g id="frames" data-total="{total:.6f}">']
    for path, x, value, depth in rows:
        label = path[-1]
        px = value * scale
        y = top + depth * FRAME_H if icicle else height - BOTTOM - (depth + 1) * FRAME_H
        info = describe(path, value, total) if describe else \
            f"{label} ({value:.2f} {unit}, {100 * value / total:.2f}%)"
        fill = color(path) if color else _color(label)
        out.append(
            f'<g class="f" data-x="{x:.6f}" data-w="{value:.6f}" data-d="{depth}" '
            f'data-n={quoteattr(label)}><title>{escape(info)}</title>'
            f'<rect x="{PAD + x * scale:.2f}" y="{y}" width="{px:.2f}" '
            f'height="{FRAME_H - 1}" rx="2" fill="{fill}"/>'
            f'<text x="{PAD + x * scale + 3:.2f}" y="{y + FRAME_H - 4}">'
            f'{escape(_fit(label, px))}</text></g>')
    out.append("</g>")
    out.append(f"<script><![CDATA[{_JS % {'W': WIDTH, 'PAD': PAD, 'CW': CHAR_W}}]]></script>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


_JS = """
var W=%(W)s, PAD=%(PAD)s, CW=%(CW)s, frames, total, details, matched, reset;
function A(g,k){return parseFloat(g.getAttribute(k));}
function init(evt){
  frames=Array.prototype.slice.call(document.querySelectorAll('g.f'));
  total=A(document.getElementById('frames'),'data-total');
  details=document.getElementById('details'); matched=document.getElementById('matched');
  reset=document.getElementById('reset');
  frames.forEach(function(g){
    g.addEventListener('click',function(){zoom(g);});
    g.addEventListener('mouseover',function(){
      details.textContent=g.querySelector('title').textContent;});
    g.addEventListener('mouseout',function(){details.textContent=' ';});
  });
  reset.addEventListener('click',function(){zoom(null);});
  document.getElementById('search').addEventListener('click',search);
  document.addEventListener('keydown',function(e){
    if((e.ctrlKey||e.metaKey)&&e.key==='f'){e.preventDefault();search();}});
}
function fit(g,px){
  var n=Math.floor((px-6)/CW), s=g.getAttribute('data-n');
  g.querySelector('text').textContent=n<3?'':(s.length<=n?s:s.slice(0,n-2)+'..');
}
function zoom(z){
  var x0=z?A(z,'data-x'):0, w0=z?A(z,'data-w'):total, d0=z?A(z,'data-d'):-1;
  var scale=(W-2*PAD)/w0, eps=w0*1e-9;
  reset.setAttribute('visibility',z?'visible':'hidden');
  frames.forEach(function(g){
    var x=A(g,'data-x'), w=A(g,'data-w'), d=A(g,'data-d');
    var r=g.querySelector('rect'), t=g.querySelector('text');
    var inside=x>=x0-eps && x+w<=x0+w0+eps;
    var below=z && d<d0 && x<=x0+eps && x+w>=x0+w0-eps;
    if(!(inside||below)){g.style.display='none';return;}
    var nx=below?PAD:PAD+(x-x0)*scale, nw=below?W-2*PAD:w*scale;
    if(nw<0.1){g.style.display='none';return;}
    g.style.display=''; g.style.opacity=below?0.55:1;
    r.setAttribute('x',nx); r.setAttribute('width',nw); t.setAttribute('x',nx+3); fit(g,nw);
  });
}
function zoomName(n){
  var best=null;
  frames.forEach(function(g){
    if(g.getAttribute('data-n')===n&&(!best||A(g,'data-w')>A(best,'data-w')))best=g;});
  if(best)zoom(best);
}
function search(){
  var term=prompt('Search frames (regular expression); empty to clear','');
  var re=term?new RegExp(term):null, spans=[];
  frames.forEach(function(g){
    var r=g.querySelector('rect');
    if(!r.hasAttribute('data-c')) r.setAttribute('data-c',r.getAttribute('fill'));
    var hit=re && re.test(g.getAttribute('data-n'));
    r.setAttribute('fill',hit?'rgb(230,0,230)':r.getAttribute('data-c'));
    if(hit) spans.push([A(g,'data-x'),A(g,'data-x')+A(g,'data-w')]);
  });
  spans.sort(function(a,b){return a[0]-b[0];});
  var sum=0, end=-1;
  spans.forEach(function(s){ if(s[0]>=end){sum+=s[1]-s[0];end=s[1];}
    else if(s[1]>end){sum+=s[1]-end;end=s[1];} });
  matched.textContent=re?('Matched: '+(100*sum/total).toFixed(1)+'%%'):' ';
}
"""
