#!/usr/bin/python3
"""Helper of tests/peer (check-peer): warms TFO cookies, turns CPython's test
output into per-case results, and compares the plain and shim results.

  peer-helper.py warm
      In the current network namespace: a TFO listener on 127.0.0.1 and on ::1,
      one TCP_FASTOPEN_CONNECT client each, so that the kernel caches a cookie
      for both addresses.
  peer-helper.py cpython-results UNIT XML LOG
      Per-case results of one regrtest run (junit XML, plus the FAIL:/ERROR:
      lines of its -v log, which also name failing subtests that the XML
      leaves out).
  peer-helper.py cpython-partial UNIT LOG
      Results of a run that died (per-case timeout, crash): the cases done,
      and the one it died in.
  peer-helper.py cpython-limits PLAIN DEFAULT
      Per-case time limits for the shim's run, from the plain results.
  peer-helper.py rerun PLAIN SHIM MAXRUNS OUT_PLAIN OUT_SHIM
      Which cases to run again on each side (see rerun()).
  peer-helper.py compare SUITE PLAIN SHIM ALLOW_LIST
      Summary line and regressions; exit 1 on a regression not allowed.

A results file has one line per run of a case:
ID<TAB>STATUS<TAB>UNIT<TAB>NOTE[<TAB>SECONDS], STATUS one of pass, skip, fail,
hang, crash, notrun (out of time); UNIT is what the suite's runner takes to
run the case again (a libuv test name, a regrtest module).
"""

import os
import re
import socket
import sys
import xml.etree.ElementTree as ET

PASS, SKIP = 'pass', 'skip'
FIXTURES = ('setUpClass', 'tearDownClass', 'setUpModule', 'tearDownModule')


def warm():
    tcp_fastopen_connect = getattr(socket, 'TCP_FASTOPEN_CONNECT', 30)
    for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
        with socket.socket(fam, socket.SOCK_STREAM) as lst:
            lst.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 8)
            lst.bind((host, 0))
            lst.listen(8)
            lst.settimeout(5)
            # Twice: the first SYN asks for the cookie, the second uses it
            # (so a failure to cache it would show as no fo_cookie).
            for _ in range(2):
                with socket.socket(fam, socket.SOCK_STREAM) as cli:
                    cli.settimeout(5)
                    cli.setsockopt(socket.IPPROTO_TCP, tcp_fastopen_connect, 1)
                    cli.connect(lst.getsockname()[:2])
                    cli.sendall(b'x')
                    srv, _ = lst.accept()
                    with srv:
                        srv.settimeout(5)
                        srv.recv(1)


def norm_id(name, dotted):
    """unittest names a fixture error "setUpClass (test.m.C)": make it
    test.m.C.setUpClass, like a case."""
    if dotted.endswith('.' + name):
        return dotted
    return dotted + '.' + name


def short(text, limit=160):
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def last_line(text):
    lines = [l for l in (text or '').splitlines() if l.strip()]
    return short(lines[-1]) if lines else ''


def read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def cpython_results(unit, xml_path, log_path):
    res = {}  # id -> [status, note]
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        root = None
    for tc in (root.iter('testcase') if root is not None else ()):
        name = tc.get('name')
        if not name:
            # A case whose subtests failed is left unnamed: the log has it.
            continue
        m = re.match(r'^(\w+) \(([\w.]+)\)$', name)
        if m:
            name = norm_id(m.group(1), m.group(2))
        status, note, secs = PASS, '', tc.get('time', '')
        for child in tc:
            if child.tag in ('failure', 'error'):
                status = 'fail'
                note = last_line(child.get('message') or child.text)
                break
            if child.tag == 'skipped':
                status, note = SKIP, short(child.text or '')
            if child.tag == 'outcome':  # unexpected success
                status, note = 'fail', 'unexpected success'
        res[name] = [status, note, secs]

    # FAIL:/ERROR: blocks of the log's summary: the id, then a separator,
    # the traceback, and the exception on the block's last line.
    lines = read_text(log_path).splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'^(FAIL|ERROR): (\w+) \(([\w.]+)\)', line)
        if not m:
            continue
        tid = norm_id(m.group(2), m.group(3))
        note = ''
        for j in range(i + 1, min(i + 400, len(lines))):
            if lines[j].startswith('=' * 20) or (
                    lines[j].startswith('-' * 20) and j > i + 2):
                break
            if lines[j].strip():
                note = lines[j]
        prev = res.get(tid)
        if not prev or prev[0] != 'fail' or not prev[1]:
            res[tid] = ['fail', short(note), prev[2] if prev else '']

    for tid, (status, note, secs) in sorted(res.items()):
        print(f'{tid}\t{status}\t{unit}\t{note}\t{secs}')


def cpython_partial(unit, log_path):
    """A run that died before writing its XML (the per-case timer, regrtest's
    --timeout, a crash): the cases its -v output shows passed or skipped, and
    the one it died in, as result lines. Exit status 3 when no case was
    running (it died outside any)."""
    text = read_text(log_path)
    done, started = [], None
    for line in text.splitlines():
        m = re.match(r'^(\w+) \(([\w.]+)\)( \.\.\. |$)', line)
        if not m:
            # A result on a line of its own (the case wrote to stderr): the
            # case is over, but which result it had is left to the next run.
            if started and re.match(r'^(ok|FAIL|ERROR|skipped .*|expected failure)$',
                                    line.strip()):
                started = None
            continue
        started = norm_id(m.group(1), m.group(2))
        rest = line[m.end():]
        r = re.match(r'^(ok|skipped (.*)|expected failure)$', rest.strip())
        if r:
            done.append((started, SKIP if r.group(2) is not None else PASS,
                         short(r.group(2) or '')))
            started = None
        elif re.search(r'\b(FAIL|ERROR|unexpected success)$', rest):
            started = None
    for tid, status, note in done:
        print(f'{tid}\t{status}\t{unit}\t{note}')
    if not started:
        return 3
    t = re.search(r'Timeout \((\d+):(\d\d):(\d\d)\)!', text)
    kind = 'hang' if t else 'crash'
    # The innermost frame of each thread says where it hung.
    frames = re.findall(r'^Thread 0x\w+ .*\n\s+File "([^"]+)", line (\d+) in (\S+)',
                        text, re.M)
    where = '; '.join(f'{fn} ({f.rsplit("/", 1)[-1]}:{ln})'
                      for f, ln, fn in frames[:3])
    if kind == 'crash':
        m = re.search(r'^Fatal Python error: .*$', text, re.M)
        where = m.group(0) if m else 'process died'
    if t:
        secs = int(t.group(1)) * 3600 + int(t.group(2)) * 60 + int(t.group(3))
        where = f'over {secs} s; {where}'
    print(f'{started}\t{kind}\t{unit}\t{where} (log {log_path})')
    return 0


def cpython_limits(plain_path, default):
    """Time limit per case for the shim's run, from the plain run (which went
    first): three times the case's plain time plus 10 s. A hang then costs
    seconds, not the generic limit; a case slowed that much by the shim is a
    regression anyway. Cases that did not pass plainly cannot be regressions:
    10 s. Cases without a plain time keep the default."""
    for tid, ent in load(plain_path).items():
        st = best(ent)[0]
        times = [float(x) for x in ent['secs'] if x]
        if st == PASS and times:
            limit = 3 * min(times) + 10
        elif st != PASS:
            limit = 10
        else:
            continue
        print(f'{tid}\t{min(limit, float(default)):.0f}')


def load(path):
    """id -> {'runs': [(status, note)...], 'unit': unit}"""
    out = {}
    for line in read_text(path).splitlines():
        parts = line.split('\t')
        if len(parts) < 3:
            continue
        tid, status, unit = parts[:3]
        note = parts[3] if len(parts) > 3 else ''
        ent = out.setdefault(tid, {'runs': [], 'unit': unit, 'secs': []})
        ent['runs'].append((status, note))
        if status == PASS and len(parts) > 4:
            ent['secs'].append(parts[4])
    return out


def best(ent):
    """pass if any run passed; else skip if any skipped; else the last run's
    failure (fail, hang, crash), a run that never started (notrun) only if
    no run did; missing when it never ran."""
    if not ent:
        return 'missing', ''
    for want in (PASS, SKIP):
        for st, note in ent['runs']:
            if st == want:
                return st, note
    ran = [r for r in ent['runs'] if r[0] != 'notrun']
    return (ran or ent['runs'])[-1]


def rerun(plain_path, shim_path, maxruns, out_plain, out_shim):
    """A case that failed plainly and under the shim is run again plainly (was
    it flaky?); a case that passed plainly and not under the shim is run again
    under the shim; each side at most MAXRUNS times in all. A hang costs a
    whole case timeout: a case that hung plainly is not run again, one that
    hung under the shim once more, and only if there are few such
    (PEER_HANG_RERUNS, default 10)."""
    plain, shim = load(plain_path), load(shim_path)
    maxruns = int(maxruns)
    want_p, want_s = [], []
    ids = sorted(set(plain) | set(shim))
    # Many hangs say the shim is broken, not flaky: running them again
    # would only spend the time budget.
    hangs = sum(best(plain.get(t))[0] == PASS and best(shim.get(t))[0] == 'hang'
                for t in ids)
    hang_runs = 2 if hangs <= int(os.environ.get('PEER_HANG_RERUNS', '10')) else 1
    for tid in ids:
        p, s = plain.get(tid), shim.get(tid)
        pst, sst = best(p)[0], best(s)[0]
        unit = (p or s)['unit']
        if sst == PASS or 'notrun' in (pst, sst):
            continue
        if pst == PASS:
            sruns = [st for st, _ in s['runs']] if s else []
            limit = min(maxruns, hang_runs) if 'hang' in sruns else maxruns
            if len(sruns) < limit:
                want_s.append((unit, tid))
        elif pst in ('fail', 'crash') and len(p['runs']) < maxruns:
            want_p.append((unit, tid))
    for path, want in ((out_plain, want_p), (out_shim, want_s)):
        with open(path, 'w') as f:
            for unit, tid in want:
                f.write(f'{unit}\t{tid}\n')


def read_allow(path, suite):
    allowed = set()
    for line in read_text(path).splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        words = line.split('|', 1)[0].split()
        if len(words) == 2 and words[0] == suite:
            allowed.add(words[1])
    return allowed


def compare(suite, plain_path, shim_path, allow_path):
    plain, shim = load(plain_path), load(shim_path)
    allowed = read_allow(allow_path, suite)
    ids = sorted(set(plain) | set(shim))
    n_plain = sum(best(plain.get(t))[0] == PASS for t in ids)
    n_shim = sum(best(shim.get(t))[0] == PASS for t in ids)
    regs = [t for t in ids
            if best(plain.get(t))[0] == PASS and best(shim.get(t))[0] != PASS]
    bad = [t for t in regs if t not in allowed]
    reruns = sum(max(len((plain.get(t) or {'runs': [1]})['runs']),
                     len((shim.get(t) or {'runs': [1]})['runs'])) > 1 for t in ids)
    print(f'peer {suite}: {len(ids)} run, {n_plain} passed plainly, '
          f'{n_shim} passed under the shim, {len(regs)} regressions, '
          f'{len(regs) - len(bad)} allowed ({reruns} run more than once)')
    for t in regs:
        runs = shim[t]['runs'] if t in shim else [('missing', '')]
        notes = list(dict.fromkeys(n for _, n in runs if n))[:2]
        tag = 'allowed' if t in allowed else 'REGRESSION'
        print(f'  {tag} {suite} {t}: {",".join(st for st, _ in runs)}'
              + (f': {" | ".join(notes)}' if notes else ''))
    # What the shim's run says of whole units (a unit that died outside any
    # case, or gave up): its cases show as missing above.
    for t in ids:
        if t not in plain and best(shim[t])[0] in ('crash', 'hang'):
            print(f'  note: {suite} {t} under the shim: {best(shim[t])[0]}: '
                  f'{best(shim[t])[1]}')
    notrun = [t for t in ids if 'notrun' in (best(plain.get(t))[0], best(shim.get(t))[0])]
    if notrun:
        print(f'  peer {suite}: out of time, not run: {" ".join(notrun[:20])}'
              + (' ...' if len(notrun) > 20 else ''))
        return 1
    # A suite that mostly fails plainly says the harness is broken, not
    # that the shim is good.
    if len(ids) < 10 or n_plain < len(ids) // 2:
        print(f'  peer {suite}: only {n_plain} of {len(ids)} cases pass plainly: '
              'the suite did not really run')
        return 1
    return 1 if bad else 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ''
    args = argv[2:]
    if cmd == 'warm' and not args:
        warm()
    elif cmd == 'cpython-results' and len(args) == 3:
        cpython_results(*args)
    elif cmd == 'cpython-partial' and len(args) == 2:
        return cpython_partial(*args)
    elif cmd == 'cpython-limits' and len(args) == 2:
        cpython_limits(*args)
    elif cmd == 'rerun' and len(args) == 5:
        rerun(*args)
    elif cmd == 'compare' and len(args) == 4:
        return compare(*args)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
