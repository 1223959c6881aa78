#!/usr/bin/env python3
"""Writes an initramfs cpio archive (newc format) from a staging directory.

Like the kernel's usr/gen_init_cpio: owners are root, times are zero (the
archive is reproducible), and device nodes are added from the command line,
so building the image needs no root and no mknod.

usage: mkcpio.py STAGING_DIR OUTPUT [--node PATH:c|b:MAJOR:MINOR:MODE]...
"""
import os
import stat
import sys


def header(ino, mode, nlink, size, rmaj, rmin, name):
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08x" % f for f in fields)


def pad4(n):
    return b"\0" * ((4 - n % 4) % 4)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    root, out = argv[1], argv[2]
    nodes = []
    args = argv[3:]
    while args:
        if args[0] != "--node" or len(args) < 2:
            sys.stderr.write("mkcpio.py: bad argument %r\n" % args[0])
            return 2
        path, kind, major, minor, mode = args[1].split(":")
        kind_bits = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        nodes.append((path.strip("/"), kind_bits | int(mode, 8), int(major), int(minor)))
        args = args[2:]

    entries = []  # (name, mode, data, rmaj, rmin)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            entries.append((rel, stat.S_IFDIR | 0o755, b"", 0, 0))
        for fn in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            full = os.path.join(dirpath, fn)
            name = os.path.normpath(os.path.join(rel, fn))
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                entries.append((name, stat.S_IFLNK | 0o777, os.readlink(full).encode(), 0, 0))
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    data = f.read()
                perm = 0o755 if st.st_mode & 0o111 else 0o644
                entries.append((name, stat.S_IFREG | perm, data, 0, 0))
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    for path, mode, major, minor in nodes:
        entries.append((path, mode, b"", major, minor))

    with open(out, "wb") as f:
        ino = 1
        for name, mode, data, rmaj, rmin in entries:
            bname = name.encode()
            nlink = 2 if stat.S_ISDIR(mode) else 1
            h = header(ino, mode, nlink, len(data), rmaj, rmin, bname) + bname + b"\0"
            f.write(h + pad4(len(h)))
            f.write(data + pad4(len(data)))
            ino += 1
        t = b"TRAILER!!!"
        h = header(0, 0, 1, 0, 0, 0, t) + t + b"\0"
        f.write(h + pad4(len(h)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
