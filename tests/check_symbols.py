#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Check the shared libraries in LIBDIR as they ship (ABI.md sections 2.1, 2.3).

Usage: check_symbols.py LIBDIR

libminiasync.so.0:
  - the file is there and SONAME is exactly libminiasync.so.0;
  - libminiasync.so is a symlink to it; there is no libminiasync.so.0.2.1
    (nor any other libminiasync.so.X.Y file);
  - the 14 upstream functions are exported at @@LIBMINIASYNC_1.0, as
    FUNC GLOBAL DEFAULT, and the LIBMINIASYNC_1.0 node of
    src/libminiasync.map lists exactly them;
  - our additions (the LIBMINIASYNC_1.1 node of src/libminiasync.map) are
    exported at @@LIBMINIASYNC_1.1, and that version's definition has
    LIBMINIASYNC_1.0 as parent;
  - no other version is defined and no other symbol is defined in .dynsym
    (every leak is listed, Rust symbols called out);
  - NEEDED has libc.so.6 and nothing but libc and the dynamic loader, and
    every undefined symbol is a versioned glibc one;
  - a C program linked with -lminiasync binds the upstream names at
    LIBMINIASYNC_1.0 and runs with LD_BIND_NOW=1.

libminiasync-vdm-dml.so (only if it exists):
  - SONAME exactly libminiasync-vdm-dml.so, no versioned file names;
  - exports, unversioned, exactly data_mover_dml_new, data_mover_dml_get_vdm,
    data_mover_dml_delete, data_mover_dml_operation_check,
    data_mover_dml_operation_start and has_property_dmd, plus our
    data_mover_dml_get_stats and data_mover_dml_get_queue_stats;
  - nothing Rust-specific in NEEDED;
  - a program linked with -lminiasync-vdm-dml -lminiasync links, resolves
    every symbol at start-up (LD_BIND_NOW=1) and copies through a
    DATA_MOVER_DML_SOFTWARE mover.

Prints "ok"/"not ok" per check and "symbols: N passed, N failed" last.
Exit status 1 if any check failed.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAP_FILE = os.path.join(ROOT, "src", "libminiasync.map")

SONAME = "libminiasync.so.0"
DML_SONAME = "libminiasync-vdm-dml.so"
NODE_1_0 = "LIBMINIASYNC_1.0"
NODE_1_1 = "LIBMINIASYNC_1.1"

# ABI.md 2.1: upstream's exports, in the order of upstream's map.
UPSTREAM_EXPORTS = [
    "runtime_new", "runtime_delete", "runtime_wait_multiple", "runtime_wait",
    "data_mover_sync_new", "data_mover_sync_get_vdm", "data_mover_sync_delete",
    "data_mover_threads_new", "data_mover_threads_default",
    "data_mover_threads_get_vdm", "data_mover_threads_set_memcpy_fn",
    "data_mover_threads_set_memmove_fn", "data_mover_threads_set_memset_fn",
    "data_mover_threads_delete",
]

# ABI.md 2.3: the three public DML functions and the three exported by
# accident upstream, which we keep (ABI.md 7, #25); then our extensions.
DML_EXPORTS = [
    "data_mover_dml_new", "data_mover_dml_get_vdm", "data_mover_dml_delete",
    "data_mover_dml_operation_check", "data_mover_dml_operation_start",
    "has_property_dmd",
    "data_mover_dml_get_stats", "data_mover_dml_get_queue_stats",
]

ALLOWED_NEEDED = re.compile(r"^(libc\.so\.6|ld-linux[-\w.]*\.so\.\d+)$")
RUST_SYMBOL = re.compile(r"^(_ZN|_R[A-Z0-9_]|rust_|__rust|__rdl_|__rg_)")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=None):
        if ok:
            self.passed += 1
            print(f"ok - {what}")
        else:
            self.failed += 1
            print(f"not ok - {what}")
        if detail and not ok:
            for line in detail if isinstance(detail, list) else [detail]:
                print(f"    {line}")
        return ok


def run(cmd, **kw):
    env = dict(os.environ, LC_ALL="C")
    env.update(kw.pop("env", {}))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)


def readelf(args, path):
    res = run(["readelf", "-W"] + args + [path])
    if res.returncode != 0:
        raise RuntimeError(f"readelf {' '.join(args)} {path}: {res.stderr}")
    return res.stdout


def dynamic_tags(path):
    """Returns [(tag, value)] of the dynamic section."""
    tags = []
    for line in readelf(["-d"], path).splitlines():
        m = re.match(r"\s*0x[0-9a-f]+\s+\((\w+)\)\s+(.*)$", line)
        if m:
            val = m.group(2)
            b = re.search(r"\[(.*)\]", val)
            tags.append((m.group(1), b.group(1) if b else val.strip()))
    return tags


def dyn_symbols(path):
    """Returns dicts (name, version, default, type, bind, vis, ndx) of .dynsym."""
    syms = []
    for line in readelf(["--dyn-syms"], path).splitlines():
        parts = line.split(None, 7)
        if len(parts) < 8 or not parts[0].rstrip(":").isdigit():
            continue
        _, _, _, typ, bind, vis, ndx, name = parts
        name = re.sub(r"\s+\(\d+\)$", "", name)  # "sym@VER (4)" of binutils 2.40
        version, default = None, False
        if "@@" in name:
            name, version = name.split("@@", 1)
            default = True
        elif "@" in name:
            name, version = name.split("@", 1)
        if name == "":
            continue
        syms.append(dict(name=name, version=version, default=default,
                         type=typ, bind=bind, vis=vis, ndx=ndx))
    return syms


def version_definitions(path):
    """Returns [(name, flags, [parents])] from .gnu.version_d."""
    defs = []
    in_verdef = False
    for line in readelf(["-V"], path).splitlines():
        if line.startswith("Version definition section"):
            in_verdef = True
            continue
        if in_verdef and line.startswith("Version ") and "definition" not in line:
            break
        if not in_verdef:
            continue
        m = re.search(r"Flags:\s*(\S+).*Name:\s*(\S+)", line)
        if m:
            defs.append((m.group(2), m.group(1), []))
            continue
        m = re.search(r"Parent \d+:\s*(\S+)", line)
        if m and defs:
            defs[-1][2].append(m.group(1))
    return defs


def map_nodes(path):
    """Returns {node: [global names]} of a GNU ld version script."""
    text = re.sub(r"/\*.*?\*/", "", open(path, encoding="utf-8").read(), flags=re.S)
    text = re.sub(r"#.*", "", text)
    nodes = {}
    for m in re.finditer(r"(\w[\w.]*)\s*\{(.*?)\}\s*([\w.]*)\s*;", text, re.S):
        body = m.group(2)
        g = re.search(r"global\s*:(.*?)(local\s*:|$)", body, re.S)
        names = re.findall(r"([A-Za-z_]\w*)\s*;", g.group(1)) if g else []
        nodes[m.group(1)] = names
    return nodes


def diff_sets(want, got):
    lines = []
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        lines.append("missing: " + ", ".join(missing))
    if extra:
        lines.append("unexpected: " + ", ".join(extra))
    return lines


def cc():
    return os.environ.get("CC", "cc")


def check_needed(c, path, label, allowed_extra=()):
    needed = [v for t, v in dynamic_tags(path) if t == "NEEDED"]
    bad = [n for n in needed
           if not ALLOWED_NEEDED.match(n) and n not in allowed_extra]
    c.check(not bad, f"{label}: NEEDED only libc and the dynamic loader"
            + (f" (or {', '.join(allowed_extra)})" if allowed_extra else "")
            + f": {needed}", [f"unexpected NEEDED: {n}" for n in bad])
    return needed


def check_undefined(c, syms, label):
    bad = [s["name"] + (f"@{s['version']}" if s["version"] else "")
           for s in syms
           if s["ndx"] == "UND" and s["bind"] != "WEAK"
           and not (s["version"] or "").startswith("GLIBC_")]
    c.check(not bad, f"{label}: every undefined symbol is a versioned glibc one",
            "not from glibc: " + ", ".join(sorted(bad)))


def check_main_library(c, libdir, work):
    path = os.path.join(libdir, SONAME)
    if not c.check(os.path.isfile(path) and not os.path.islink(path),
                   f"{SONAME} is a regular file in {libdir}"):
        return

    sonames = [v for t, v in dynamic_tags(path) if t == "SONAME"]
    c.check(sonames == [SONAME], f"SONAME is exactly {SONAME}", f"SONAME: {sonames}")

    link = os.path.join(libdir, "libminiasync.so")
    c.check(os.path.islink(link) and os.readlink(link) in (SONAME, path)
            and os.path.samefile(link, path),
            f"libminiasync.so is a symlink to {SONAME}",
            f"{link}: " + (f"-> {os.readlink(link)}" if os.path.islink(link)
                           else "not a symlink" if os.path.exists(link) else "missing"))

    versioned = sorted(os.path.basename(p)
                       for p in glob.glob(os.path.join(libdir, "libminiasync.so.*.*")))
    c.check(not versioned, "no libminiasync.so.0.2.1 (nor any libminiasync.so.X.Y)",
            "present: " + ", ".join(versioned))

    nodes = map_nodes(MAP_FILE)
    c.check(nodes.get(NODE_1_0) == UPSTREAM_EXPORTS,
            f"src/libminiasync.map node {NODE_1_0} lists upstream's 14 functions in order",
            diff_sets(UPSTREAM_EXPORTS, nodes.get(NODE_1_0, []))
            or [f"order: {nodes.get(NODE_1_0)}"])
    additions = nodes.get(NODE_1_1, [])
    c.check(bool(additions) and set(nodes) == {NODE_1_0, NODE_1_1},
            f"src/libminiasync.map has exactly the nodes {NODE_1_0} and {NODE_1_1}",
            f"nodes: {sorted(nodes)}")

    syms = dyn_symbols(path)
    defined = [s for s in syms if s["ndx"] != "UND"]
    funcs = [s for s in defined if s["ndx"] != "ABS"]

    at_1_0 = [s["name"] for s in funcs if s["version"] == NODE_1_0 and s["default"]]
    c.check(sorted(at_1_0) == sorted(UPSTREAM_EXPORTS),
            f"the 14 upstream functions are exported at @@{NODE_1_0}",
            diff_sets(UPSTREAM_EXPORTS, at_1_0))

    at_1_1 = [s["name"] for s in funcs if s["version"] == NODE_1_1 and s["default"]]
    c.check(sorted(at_1_1) == sorted(additions),
            f"our {len(additions)} additions are exported at @@{NODE_1_1}",
            diff_sets(additions, at_1_1))

    wrong_kind = [f"{s['name']}: {s['type']} {s['bind']} {s['vis']}" for s in funcs
                  if (s["type"], s["bind"], s["vis"]) != ("FUNC", "GLOBAL", "DEFAULT")]
    c.check(not wrong_kind, "every export is FUNC GLOBAL DEFAULT", wrong_kind)

    expected_names = set(UPSTREAM_EXPORTS) | set(additions)
    leaks = [s for s in funcs
             if s["name"] not in expected_names
             or (s["version"], s["default"]) not in ((NODE_1_0, True), (NODE_1_1, True))
             or (s["name"] in UPSTREAM_EXPORTS) != (s["version"] == NODE_1_0)]
    rust = [s["name"] for s in syms if RUST_SYMBOL.match(s["name"])]
    c.check(not leaks, "no other symbol is defined in .dynsym",
            [f"leak: {s['name']}" + (f"@{'@' if s['default'] else ''}{s['version']}"
                                     if s["version"] else "") for s in leaks])
    c.check(not rust, "no Rust symbol in .dynsym (defined or undefined)",
            "Rust symbols: " + ", ".join(sorted(rust)))

    abs_syms = sorted(s["name"] for s in defined if s["ndx"] == "ABS")
    c.check(abs_syms == [NODE_1_0, NODE_1_1],
            f"only the version-definition symbols {NODE_1_0}, {NODE_1_1} are ABS",
            f"ABS symbols: {abs_syms}")

    defs = version_definitions(path)
    want_defs = [(SONAME, "BASE", []), (NODE_1_0, "none", []), (NODE_1_1, "none", [NODE_1_0])]
    c.check(defs == want_defs,
            f"version definitions: base {SONAME}, {NODE_1_0}, "
            f"{NODE_1_1} with parent {NODE_1_0}",
            [f"found: {d[0]} flags {d[1]} parents {d[2]}" for d in defs]
            or ["no version definition section"])

    verdefnum = [v for t, v in dynamic_tags(path) if t == "VERDEFNUM"]
    c.check(verdefnum == ["3"], "VERDEFNUM is 3 (base + 2 nodes)", f"VERDEFNUM: {verdefnum}")

    needed = check_needed(c, path, SONAME)
    c.check("libc.so.6" in needed, f"{SONAME}: NEEDED contains libc.so.6", f"NEEDED: {needed}")
    check_undefined(c, syms, SONAME)

    # A program referencing every export binds upstream's names at the
    # upstream node and our additions at ours, and everything resolves at
    # start-up. It declares the names itself: several additions are also
    # static inline functions in the headers, which would hide the exports.
    src = os.path.join(work, "link_main.c")
    exe = os.path.join(work, "link_main")
    with open(src, "w", encoding="utf-8") as f:
        f.write("#include <stddef.h>\n")
        for name in UPSTREAM_EXPORTS + additions:
            f.write(f"void {name}(void);\n")
        f.write("int main(void) {\n\tvoid (*volatile p[])(void) = {\n")
        for name in UPSTREAM_EXPORTS + additions:
            f.write(f"\t\t{name},\n")
        f.write("\t};\n\tfor (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)\n")
        f.write("\t\tif (p[i] == NULL)\n\t\t\treturn 1;\n\treturn 0;\n}\n")
    res = run([cc(), "-std=gnu99", "-I", os.path.join(ROOT, "include"), "-o", exe, src,
               "-L", libdir, "-Wl,-rpath," + os.path.abspath(libdir), "-lminiasync"])
    if not c.check(res.returncode == 0, "a program links with -lminiasync",
                   res.stderr.strip().splitlines()):
        return
    res = run([exe], env={"LD_BIND_NOW": "1"})
    c.check(res.returncode == 0, "it runs with LD_BIND_NOW=1 (all symbols resolve)",
            (res.stderr or f"exit status {res.returncode}").strip().splitlines())
    refs = {s["name"]: s["version"] for s in dyn_symbols(exe) if s["ndx"] == "UND"}
    wrong = [f"{n}@{refs.get(n)}" for n in UPSTREAM_EXPORTS if refs.get(n) != NODE_1_0]
    wrong += [f"{n}@{refs.get(n)}" for n in additions if refs.get(n) != NODE_1_1]
    c.check(not wrong, f"the program binds upstream names @{NODE_1_0}, additions @{NODE_1_1}",
            wrong)


def check_dml_library(c, libdir, work):
    path = os.path.join(libdir, DML_SONAME)
    label = DML_SONAME
    c.check(os.path.isfile(path), f"{DML_SONAME} is a file in {libdir}")

    sonames = [v for t, v in dynamic_tags(path) if t == "SONAME"]
    c.check(sonames == [DML_SONAME], f"{label}: SONAME is exactly {DML_SONAME}",
            f"SONAME: {sonames}")

    versioned = sorted(os.path.basename(p)
                       for p in glob.glob(os.path.join(libdir, DML_SONAME + ".*")))
    c.check(not versioned, f"{label}: no versioned file names (upstream has none)",
            "present: " + ", ".join(versioned))

    syms = dyn_symbols(path)
    defined = [s for s in syms if s["ndx"] not in ("UND", "ABS")]
    names = [s["name"] for s in defined]
    c.check(sorted(names) == sorted(DML_EXPORTS),
            f"{label}: exports exactly the 3 public and 3 upstream-accidental functions",
            diff_sets(DML_EXPORTS, names))
    versioned_syms = [f"{s['name']}@{s['version']}" for s in defined if s["version"]]
    abs_syms = [s["name"] for s in syms if s["ndx"] == "ABS"]
    c.check(not versioned_syms and not abs_syms, f"{label}: exports are unversioned",
            versioned_syms + [f"version symbol: {a}" for a in abs_syms])
    wrong_kind = [f"{s['name']}: {s['type']} {s['bind']} {s['vis']}" for s in defined
                  if (s["type"], s["bind"], s["vis"]) != ("FUNC", "GLOBAL", "DEFAULT")]
    c.check(not wrong_kind, f"{label}: every export is FUNC GLOBAL DEFAULT", wrong_kind)
    rust = [s["name"] for s in syms if RUST_SYMBOL.match(s["name"])]
    c.check(not rust, f"{label}: no Rust symbol in .dynsym",
            "Rust symbols: " + ", ".join(sorted(rust)))

    check_needed(c, path, label, allowed_extra=(SONAME,))

    src = os.path.join(work, "link_dml.c")
    exe = os.path.join(work, "link_dml")
    with open(src, "w", encoding="utf-8") as f:
        f.write("""#include <string.h>
#include <libminiasync-vdm-dml.h>
/* exported by accident upstream; kept so old binaries still link */
void data_mover_dml_operation_check(void);
void data_mover_dml_operation_start(void);
void has_property_dmd(void);
int main(void) {
\tvolatile void *p[] = { (void *)(size_t)data_mover_dml_operation_check,
\t\t(void *)(size_t)data_mover_dml_operation_start, (void *)(size_t)has_property_dmd };
\tchar src[256], dst[256];
\t(void)p;
\tmemset(src, 0x5a, sizeof(src));
\tmemset(dst, 0, sizeof(dst));
\tstruct data_mover_dml *dmd = data_mover_dml_new(DATA_MOVER_DML_SOFTWARE);
\tif (dmd == NULL) return 2;
\tstruct vdm_operation_future f = vdm_memcpy(data_mover_dml_get_vdm(dmd), dst, src,
\t\tsizeof(src), 0);
\tFUTURE_BUSY_POLL(&f);
\tint bad = f.output.result != VDM_SUCCESS || memcmp(src, dst, sizeof(src)) != 0;
\tdata_mover_dml_delete(dmd);
\treturn bad ? 3 : 0;
}
""")
    res = run([cc(), "-std=gnu99", "-I", os.path.join(ROOT, "include"), "-o", exe, src,
               "-L", libdir, "-Wl,-rpath," + os.path.abspath(libdir),
               "-lminiasync-vdm-dml", "-lminiasync"])
    if not c.check(res.returncode == 0,
                   f"{label}: a program links with -lminiasync-vdm-dml -lminiasync",
                   res.stderr.strip().splitlines()):
        return
    res = run([exe], env={"LD_BIND_NOW": "1"})
    what = {2: "data_mover_dml_new(DATA_MOVER_DML_SOFTWARE) returned NULL",
            3: "the copy failed or the data differs"}
    c.check(res.returncode == 0,
            f"{label}: it resolves with LD_BIND_NOW=1 and copies through the SOFTWARE path",
            [what.get(res.returncode, f"exit status {res.returncode}")]
            + res.stderr.strip().splitlines())


def main(argv):
    if len(argv) != 2:
        print("usage: check_symbols.py LIBDIR", file=sys.stderr)
        return 2
    libdir = argv[1]
    if shutil.which("readelf") is None:
        print("check_symbols: readelf (binutils) is required")
        print("symbols: 0 passed, 1 failed")
        return 1
    c = Checks()
    work = tempfile.mkdtemp(prefix="miniasync-symbols-")
    try:
        check_main_library(c, libdir, work)
        if os.path.exists(os.path.join(libdir, DML_SONAME)):
            check_dml_library(c, libdir, work)
        else:
            print(f"# {DML_SONAME} not built: its checks are skipped")
    except RuntimeError as e:
        c.check(False, str(e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"symbols: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
