#!/usr/bin/env python3
"""md2man: a manual page (roff, man macros) from one of svc's markdown docs.

    python3 tools/md2man.py VERSION docs/cli.md > build/man/svc.8

Why a converter of our own, and markdown as the one source: docs/cli.md and
docs/format-package.md are what people read in the tree and on the web, and
they must stay the single source (a second copy in scdoc or roff would drift).
pandoc would do it but pulls in ~200 MB; scdoc would mean writing the docs in
scdoc syntax and still converting back to markdown.  Our docs use a small
subset of markdown, handled here: headings, paragraphs, tables, indented code
blocks, "-" and "1." lists, `code`, **bold**, *emphasis*, [links](url).
Tables become tagged paragraphs (.TP: first cell as the tag), which read
better in an 80-column terminal than tbl tables and never overflow it.

The document names its page in its first line:
    <!-- man: NAME SECTION "one-line description" -->
Other HTML comments are notes to the editors, left out.  The H1 title is replaced by the NAME section; each "## X" becomes .SH X,
"### X" becomes .SS X.
"""
import re
import shlex
import sys

SPECIAL = {"\u2026": "...", "\u2014": "\\(em", "\u2013": "\\(en", "\u00a7": "\\(sc",
           "\u2192": "\\(->", "\u00d7": "\\(mu", "\u2264": "\\(<=", "\u2265": "\\(>="}


# the manual each section belongs to (the page's header line)
MANUALS = {"1": "User Commands", "5": "File Formats", "8": "System Administration"}


def escape(text):
    """Plain text to roff: backslashes, hyphens (a real minus in options),
    and characters outside ASCII as groff named or \\[uXXXX] glyphs."""
    out = []
    for ch in text.replace("\\", "\\e").replace("-", "\\-"):
        if ord(ch) < 128:
            out.append(ch)
        else:
            out.append(SPECIAL.get(ch, "\\[u%04X]" % ord(ch)))
    return "".join(out)


INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\[([^\]]+)\]\(([^)]+)\)")


def inline(text):
    """Markdown inline markup to roff font changes."""
    out, pos = [], 0
    for m in INLINE.finditer(text):
        out.append(escape(text[pos:m.start()]))
        code, bold, em, ltext, url = m.groups()
        if code is not None:
            # a long span (a JSON shape) may break after a comma: \: is a
            # break point that prints nothing
            out.append("\\fB" + escape(code).replace(",", ",\\:") + "\\fR")
        elif bold is not None:
            out.append("\\fB" + escape(bold) + "\\fR")
        elif em is not None:
            out.append("\\fI" + escape(em) + "\\fR")
        else:
            out.append(escape(ltext) + " (" + escape(url) + ")")
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def text_lines(text):
    """A paragraph as roff input lines: no line may start with a control
    character ('.' or ')."""
    line = inline(" ".join(text.split()))
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def cells(row):
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    parts = re.split(r"(?<!\\)\|", row)
    return [p.strip().replace("\\|", "|") for p in parts]


def convert(src, version):
    lines = src.split("\n")
    m = re.match(r'<!--\s*man:\s*(.*?)\s*-->', lines[0]) if lines else None
    if not m:
        sys.exit("md2man: the first line must be <!-- man: NAME SECTION \"description\" -->")
    name, section, desc = shlex.split(m.group(1))
    out = ['.\\" Generated from markdown by tools/md2man.py: edit the markdown, not this file.',
           '.TH %s %s "" "svc %s" "%s"' % (name.upper(), section, version,
                                           MANUALS[section]),
           ".ad l",  # ragged right: long code spans (JSON shapes) cannot be justified
           ".nh",  # no hyphenation: paths and option names stay whole
           ".SH NAME", "%s \\- %s" % (escape(name), escape(desc))]
    i, para = 1, []
    in_section = [False]

    def section():
        """Text before the first "##" heading goes under DESCRIPTION."""
        if not in_section[0]:
            out.append(".SH DESCRIPTION")
            in_section[0] = True

    def flush():
        if para:
            section()
            out.append(".PP")
            out.append(text_lines(" ".join(para)))
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            flush()
            i += 1
            continue
        if stripped.startswith("<!--"):  # a comment for the editors of the source
            flush()
            while i < len(lines) and "-->" not in lines[i]:
                i += 1
            i += 1
            continue
        if line.startswith("# "):
            flush()
            i += 1
            continue
        if line.startswith("## ") or line.startswith("### "):
            flush()
            title = line.split(" ", 1)[1].strip()
            title = title.replace("`", "")
            in_section[0] = True
            out.append((".SH " if line.startswith("## ") else ".SS ") + '"' +
                       escape(title.upper() if line.startswith("## ") else title) + '"')
            i += 1
            continue
        if stripped.startswith("|") and i + 1 < len(lines) and \
                re.match(r"^\s*\|?\s*:?-{3,}", lines[i + 1]):
            flush()
            section()
            head = cells(line)
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                row = cells(lines[i])
                out.append(".TP")
                out.append(text_lines(row[0]) if row[0] else "\\&")
                body = [row[1]] if len(row) > 1 else []
                for h, c in zip(head[2:], row[2:]):
                    if c:
                        body.append("%s: %s" % (h.capitalize(), c))
                out.append(text_lines(". ".join(b.rstrip(".") for b in body if b) +
                                      ("." if body and body[-1].endswith(".") else "")))
                i += 1
            continue
        if line.startswith("    "):
            flush()
            section()
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += [".PP", ".RS 4", ".nf"]
            out += ["\\&" + escape(b) for b in block]
            out += [".fi", ".RE"]
            continue
        lm = re.match(r"^(\s*)(-|\d+\.)\s+(.*)", line)
        if lm:
            flush()
            section()
            indent = len(lm.group(1)) + len(lm.group(2)) + 1
            item = [lm.group(3)]
            i += 1
            nested = []
            while i < len(lines) and lines[i].strip() and \
                    not re.match(r"^\s*(-|\d+\.)\s+", lines[i]):
                if lines[i].startswith(" " * (indent + 4)):
                    nested.append(lines[i][indent + 4:])
                else:
                    item.append(lines[i].strip())
                i += 1
            # a code block inside the item, after a blank line
            if i + 1 < len(lines) and not lines[i].strip() and \
                    lines[i + 1].startswith(" " * (indent + 4)):
                i += 1
                while i < len(lines) and lines[i].startswith(" " * (indent + 4)):
                    nested.append(lines[i][indent + 4:])
                    i += 1
            tag = "\\(bu" if lm.group(2) == "-" else lm.group(2)
            out.append(".IP %s %d" % (tag, 2 if lm.group(2) == "-" else 4))
            out.append(text_lines(" ".join(item)))
            if nested:
                out += [".RS 4", ".nf"] + ["\\&" + escape(b) for b in nested] + [".fi", ".RE"]
            continue
        para.append(stripped)
        i += 1
    flush()
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: md2man.py VERSION FILE.md")
    with open(sys.argv[2], encoding="utf-8") as f:
        sys.stdout.write(convert(f.read(), sys.argv[1]))


if __name__ == "__main__":
    main()
