"""pipeline.markdown: markdown and $math$ to HTML that can never run anything a model wrote."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from pipeline.markdown import render_markdown, sanitise

# Model texts that would run something if passed through: each must come out as inert text.
XSS = [
    "<script>window.pwned = 1</script>",
    '<img src=x onerror="window.pwned = 1">',
    "[click](javascript:window.pwned=1)",
    '<a href="https://x.org" onclick="window.pwned=1">x</a>',
    "<iframe src=https://evil.example></iframe>",
    '<svg onload="window.pwned=1"></svg>',
    "<style>body{display:none}</style>",
    # latex2mathml copies \text{...} through unescaped: the sanitiser is what stops this one.
    "$\\text{<img src=x onerror=alert(1)>}$",
    "$$\\href{javascript:alert(1)}{x}$$",
    "```html\n<script>alert(1)</script>\n```",
    '<math><mtext><img src=x onerror="window.pwned=1"></mtext></math>',
]
RUNNABLE_TAGS = {"script", "img", "iframe", "svg", "style", "object", "embed", "link", "meta", "form", "input"}


class Elements(HTMLParser):
    """Every element and attribute the browser would build from the HTML."""

    def __init__(self, markup: str):
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str]] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


@pytest.mark.parametrize("layer", [render_markdown, sanitise], ids=["rendered", "sanitiser alone"])
@pytest.mark.parametrize("text", XSS)
def test_nothing_that_runs_survives(text, layer):
    found = Elements(layer(text))
    assert found.tags & RUNNABLE_TAGS == set()
    assert [name for name, _ in found.attributes if name.startswith("on") or name == "style"] == []
    assert [value for name, value in found.attributes if "javascript:" in value.lower()] == []


def test_raw_html_from_a_model_is_shown_as_text():
    html = render_markdown('Try <script>alert("x")</script> now')
    assert html == '<p>Try &lt;script&gt;alert("x")&lt;/script&gt; now</p>\n'


def test_markdown_is_rendered():
    html = render_markdown("# Steps\n\n1. **add** the *tens*\n2. `carry`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~wrong~~")
    for piece in ("<h1>Steps</h1>", "<ol>", "<strong>add</strong>", "<em>tens</em>", "<code>carry</code>", "<table>",
                  "<td>2</td>", "<s>wrong</s>"):
        assert piece in html


def test_inline_and_display_math_become_mathml():
    html = render_markdown("So $x^2 = 4$ and\n\n$$\\frac{a}{b}$$")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><msup><mi>x</mi><mn>2</mn></msup>' in html
    assert 'display="block"' in html and "<mfrac>" in html


def test_dollar_amounts_are_not_math():
    # Pandoc's rule: no space just inside the dollars, no digit right after the closing one.
    assert render_markdown("It costs $5 and $6.") == "<p>It costs $5 and $6.</p>\n"


def test_math_in_code_stays_code():
    assert render_markdown("`$x$`") == "<p><code>$x$</code></p>\n"


def test_bad_latex_is_shown_as_its_source():
    html = render_markdown("$\\frac{1}{$")
    assert "<math" not in html and "\\frac{1}{" in html


def test_links_are_kept_with_a_safe_rel():
    html = render_markdown("[docs](https://example.org/a)")
    assert html == '<p><a href="https://example.org/a" rel="noopener noreferrer nofollow">docs</a></p>\n'


def test_the_sanitiser_keeps_mathml_and_drops_the_rest():
    assert sanitise('<math><mi onclick="x">y</mi></math><b style="color:red">z</b>') == "<math><mi>y</mi></math>z"


def test_empty_text_renders_empty():
    assert render_markdown("") == ""
