"""Model text to safe HTML: markdown (CommonMark, tables, strikethrough), $math$ as MathML, then an allow-list sanitiser.

Nothing a model writes may run in a reader's browser. Three layers make sure of it: the markdown parser
never passes raw HTML through (``<script>`` becomes the text "<script>"), math goes through latex2mathml,
and everything that comes out is cleaned by nh3 (the Ammonia sanitiser) against a short allow-list of
tags and attributes: no scripts, no event handlers, no styles, no images, links only to http(s) and mail.
Chromium renders MathML natively, so math needs no JavaScript either.
"""

from __future__ import annotations

import functools
import html

import nh3
from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

TEXT_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
}
MATH_TAGS = {
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub",
    "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle",
    "menclose", "mpadded", "mphantom", "merror",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "math": {"display", "xmlns"},
    "mo": {"stretchy", "fence", "separator", "lspace", "rspace", "form", "largeop", "movablelimits", "accent"},
    "mi": {"mathvariant"},
    "mstyle": {"displaystyle", "scriptlevel", "mathvariant"},
    "mfrac": {"linethickness"},
    "mspace": {"width"},
    "mtable": {"columnalign", "rowspacing", "columnspacing"},
    "mtd": {"columnalign"},
    "menclose": {"notation"},
    "mover": {"accent"},
    "munder": {"accentunder"},
}
URL_SCHEMES = {"http", "https", "mailto"}
MAX_MATH_CHARS = 2000  # a pathological formula is shown as code rather than converted


def _math(content: str, options: dict) -> str:
    """MathML for one formula; its source as code when latex2mathml cannot read it."""
    display = "block" if options.get("display_mode") else "inline"
    if len(content) <= MAX_MATH_CHARS:
        try:
            return latex_to_mathml(content.strip(), display=display)
        except Exception:  # latex2mathml raises many kinds on bad input; the reader still sees the source
            pass
    return f'<code class="math-source">{html.escape(content)}</code>'


@functools.lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # "$5 and $6" is money, not math: no space inside the dollars, no digit right after the closing one.
    return (MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
            .enable(["table", "strikethrough"])
            .use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True, allow_labels=False,
                 renderer=_math))


def sanitise(markup: str) -> str:
    """Only the allow-listed tags and attributes survive; links get rel="noopener noreferrer nofollow"."""
    return nh3.clean(markup, tags=TEXT_TAGS | MATH_TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer nofollow", strip_comments=True)


def render_markdown(text: str) -> str:
    """Safe HTML for a model's (or anyone's) markdown with $inline$ and $$display$$ math."""
    return sanitise(_parser().render(text or ""))
