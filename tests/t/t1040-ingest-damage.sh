#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-ingest: truncated and corrupt archives keep the good records; decompression bombs are
# stopped; memory stays bounded on inputs larger than the bound.
. "$(dirname "$0")/test-lib.sh"

stat() { python3 -c "import json; s=json.load(open('st.json')); print($1)"; }

# mkbomb.py: archives that expand a lot, built in a second from repeated compressed pieces
cat >mkbomb.py <<\EOT
import sys, zlib, struct, tarfile, io
kind, out, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
MiB = 1 << 20
def gz(data):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()
def tar_header(name, size):
    ti = tarfile.TarInfo(name); ti.size = size; ti.mtime = 0
    return ti.tobuf(tarfile.USTAR_FORMAT)
if kind == "targz":            # one entry of zeros, gzip members concatenated
    piece = gz(bytes(MiB))
    with open(out, "wb") as f:
        f.write(gz(tar_header("zeros.bin", mib * MiB)))
        for _ in range(mib): f.write(piece)
        f.write(gz(bytes(1024)))
elif kind == "textgz":         # many text entries of 'a' lines (valid UTF-8, no NUL)
    body = (b"a" * 63 + b"\n") * (900 * 1024 // 64)
    piece = gz(tar_header("x", len(body)) + body)
    with open(out, "wb") as f:
        for i in range(mib):
            f.write(gz(tar_header("f%05d.txt" % i, len(body)) + body))
        f.write(gz(bytes(1024)))
elif kind == "zip":            # one deflated entry of zeros, built from flushed blocks
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    z = bytes(MiB)
    for _ in range(mib): crc = zlib.crc32(z, crc)
    data = block * mib + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    name = b"zeros.txt"; size = mib * MiB
    lh = struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0)
    cd = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0, 8, 0, 0, crc, len(data), size,
                     len(name), 0, 0, 0, 0, 0, 0)
    with open(out, "wb") as f:
        f.write(lh + name + data)
        off = f.tell()
        f.write(cd + name)
        f.write(struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 1, 1, len(cd) + len(name), off, 0))
EOT

test_expect_success 'setup: 50 text files in tar, tar.gz, zip; truncated and corrupt copies' '
    mkdir -p t &&
    python3 -c "
import random, base64
r = random.Random(42)
for i in range(1, 51):
    open(\"t/f%d.txt\" % i, \"w\").write(base64.encodebytes(bytes(r.getrandbits(8) for _ in range(15000))).decode())
" &&
    tar --sort=name --mtime=@0 --owner=0 --group=0 -cf t.tar t &&
    gzip -nk t.tar && (cd t && zip -qr ../t.zip .) &&
    for f in t.tar t.tar.gz t.zip; do
        head -c $(( $(wc -c <$f) / 2 )) $f >trunc-$f || return 1
    done &&
    cp t.tar.gz corrupt.tar.gz &&
    printf "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" | dd of=corrupt.tar.gz bs=1 seek=150000 conv=notrunc 2>/dev/null &&
    printf "this is not an archive" >junk.zip
'

for f in t.tar t.tar.gz t.zip; do
    test_expect_success "truncated $f: earlier records kept, message names archive and entry, exit 1" "
        test_expect_code 1 cm-ingest -q --stats st.json trunc-$f t.tar >out 2>err &&
        n=\$(wc -l <out) && test \$n -gt 55 && test \$n -lt 100 &&
        test_grep '^cm-ingest: trunc-$f: [^:]*: ' err &&
        python3 -c 'import json,sys; [json.loads(l) for l in open(\"out\")]' &&
        test \$(stat 's[\"errors\"]') = 1
    "
done

test_expect_success 'records of a truncated archive are whole and equal to the originals' '
    cm-ingest -q --no-source t.tar.gz >full &&
    test_expect_code 1 cm-ingest -q --no-source trunc-t.tar.gz >part 2>/dev/null &&
    sed "s/\"repo_name\":\"trunc-t\"/\"repo_name\":\"t\"/" part >part2 &&
    head -n $(wc -l <part2) full >expect &&
    test_cmp expect part2
'

# (the input is fixed, so the damage is too: libarchive 3.6 does not check the gzip CRC, so
# damage that still inflates would pass unnoticed; this one breaks the deflate stream)
test_expect_success 'corrupt compressed data: good records kept, message, exit 1' '
    test_expect_code 1 cm-ingest -q corrupt.tar.gz t.tar >out 2>err &&
    test $(wc -l <out) -ge 55 &&
    test_grep "^cm-ingest: corrupt.tar.gz: " err
'

test_expect_success 'not an archive: named, next input still read, exit 1' '
    test_expect_code 1 cm-ingest -q junk.zip t.zip >out 2>err &&
    test $(wc -l <out) = 50 &&
    test_grep "^cm-ingest: junk.zip: not a readable archive" err
'

test_expect_success 'a gzip header alone on stdin: an error, not a crash (sniffing)' '
    head -c 10 t.tar.gz >hdr.gz &&
    test_expect_code 1 cm-ingest -q - <hdr.gz >out 2>err &&
    test_grep "^cm-ingest: stdin: " err &&
    test_expect_code 1 cm-ingest -q hdr.gz >out 2>err
'

if [ "$CM_SAN" = 1 ]; then BOMB=300; TEXT=60; else BOMB=1024; TEXT=300; fi

test_expect_success "tar.gz bomb ($BOMB MiB of zeros from ~1 MB) stopped by the expansion cap" '
    python3 mkbomb.py targz bomb.tar.gz $BOMB &&
    test $(wc -c <bomb.tar.gz) -lt 2000000 &&
    test_expect_code 1 cm-ingest -q --stats st.json bomb.tar.gz t.tar >out 2>err &&
    test_grep "^cm-ingest: bomb.tar.gz: zeros.bin: expansion exceeds 200x" err &&
    test $(wc -l <out) = 50 &&
    test "$(stat "s[\"skipped_by_reason\"][\"expansion_cap\"], s[\"capped_inputs\"]")" = "1 1"
'

test_expect_success '--max-expanded-size caps in absolute terms' '
    test_expect_code 1 cm-ingest -q --max-expanded-size=50M bomb.tar.gz >out 2>err &&
    test_grep "expansion exceeds --max-expanded-size" err
'

test_expect_success "zip bomb ($BOMB MiB of zeros in one entry): skipped without inflating, bounded memory" '
    python3 mkbomb.py zip bomb.zip $BOMB &&
    /usr/bin/time -f "%M" -o rss cm-ingest -q --stats st.json bomb.zip >out &&
    test ! -s out &&
    test $(stat "s[\"skipped_by_reason\"][\"oversized\"]") = 1 &&
    test $(tail -1 rss) -lt 200000
'

test_expect_success 'a bomb of text entries stops at the cap, records before it kept' '
    python3 mkbomb.py textgz text.tar.gz 100 &&
    test_expect_code 1 cm-ingest -q --max-expansion=20 --stats st.json text.tar.gz >out 2>err &&
    test_grep "expansion exceeds 20x" err &&
    n=$(wc -l <out) && test $n -gt 5 && test $n -lt 40 &&
    test $(stat "s[\"emitted\"]") = $n
'

test_expect_success "memory stays bounded on $TEXT x 900 KiB of text (more than the bound)" '
    python3 mkbomb.py textgz big.tar.gz $TEXT &&
    # (under ASan, a small quarantine: freed buffers are ASan'"'"'s memory, not ours)
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=16" \
    /usr/bin/time -f "%M" -o rss cm-ingest -q --max-expansion=100000 --stats st.json big.tar.gz >/dev/null &&
    test $(stat "s[\"emitted\"]") = $TEXT &&
    test $(stat "s[\"content_bytes_out\"]") -gt $(( TEXT * 900000 )) &&
    test $(tail -1 rss) -lt 150000
'

test_done
