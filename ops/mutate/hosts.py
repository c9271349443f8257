"""Mutants of the Linux host scripts (hosts/linux/), and how to test them.

What is covered: the pieces every Linux rotation document is joined from (ops/template.py): the
shell pieces prologue.sh, flow.sh, postgres.sh, mysql.sh and the python3 helpers secret.py,
postgres.py, mysql.py. hosts/windows/sqlserver.ps1 is left out: its tests that run it need
PowerShell and SQL Server, which this machine (and CI) does not have, so every mutant of it would
survive and the score would measure the machine, not the tests.

How a mutant is made (systematically, by rule, in file order; each is one edit of one line):
  Python, from the ast:  a comparison's boundary moved (< <=, > >=) or its sense flipped (== !=,
    in / not in, is / is not); `and` / `or` swapped; a `not` removed; True / False swapped; an
    integer constant +1 and -1 where it bounds a comparison or a slice (not the one that is the
    comparison's boundary moved again: `n < 5` made `n <= 5` is `n < 6`); a `return`, `raise`,
    `continue` or `break` replaced by `pass`; a call of die() or sys.exit() removed; an exit code
    swapped (die(4, ...) -> die(6, ...)); the stage names AWSPENDING / AWSCURRENT swapped.
  Shell, from the text outside quotes and comments: a `fail N` / `exit N` guard removed (it
    becomes `true N`), its exit code swapped; `return N` of a status changed; -eq / -ne / -lt /
    -le / -gt / -ge flipped; = / != flipped inside [ ]; a `!` removed; && / || swapped; -z / -n
    swapped; a call of one of the scripts' own functions (verify, change_password, ...) or a
    `[ ... ] || ...` guard line removed (it becomes `:`), the edit behind issue 14's sixth bug.
The operators were chosen for the bugs that decide safety here: a check skipped, a status misread,
an exit code that makes the function retry instead of alert (or the reverse). Text changes inside
SQL and messages are left alone: the tests would catch most, at a price of minutes each.

How a mutant is tested: the repository is copied (the files git knows, tracked or not ignored,
as they are in the working tree) to <scratch>/hosts, so the working tree is never mutated. For
each mutant the piece is edited there and `python3 -m ops.template` regenerates template.yaml,
because the tests run the documents from template.yaml; then the tests that execute the mutated
line run, in order, until the first failure, which is the killer: the test that killed the same
mutant in an earlier run (from the state file, for a file run again), the last killer of its line,
those that killed earlier mutants (neighbouring mutants fall to the same test), then the quickest
(Session._ordered); then the piece and the generated files are put back. A mutant the shell or Python cannot parse (bash -n,
ast) is unbuildable. A run that outlasts TIMEOUT_SECONDS (a mutant that loops) counts as killed
by "timeout".

The tests run in one pytest session that stays up for the whole run (ops/mutate/hosts_worker.py):
it collects the tests of every piece once, starts the databases and the moto server once, and
runs the node ids it is sent, reading template.yaml again (and reloading the helpers tests import)
before each request. A session that dies or hangs is stopped (SIGINT first, so it stops its
databases) and the next request starts a fresh one.

Which tests: COVERAGE names each piece's candidates. The engine's pieces run that engine's tests
only (-k); the shared pieces (prologue.sh, flow.sh) run the PostgreSQL document's tests only,
because both documents carry the same text of them (MySQL's own lines are mysql.sh's). The attack
tests of the other files (e2e, operations) are not in any subset: they run the same scripts far
slower. Of those candidates a mutant gets only the ones that execute its line, from the coverage
pass: before a file's mutants (begin_file), each candidate not yet traced runs once on the
unmutated copy with the scripts traced. The documents' bash is traced with xtrace to its own
descriptor, PS4 carrying $LINENO (_TRACE_PROLOGUE, put in place of prologue.sh's first line, a
comment, so no line moves); a document sh runs without bash (a test of a host that has none) is
never traced by bash, so the trace line itself, under sh, marks the one line sh executes: the one
that re-executes the script under bash; the helpers run under a sys.settrace line tracer (_TRACER, a file in
the trace directory that bash's `python3` is made to run: nothing of it is in hosts/, whose
helpers stay python 3.7 text); the helpers tests import are traced in the test process. A
document's line is mapped back to its piece by aligning the document with the pieces it is joined
from (ops/template.py), and likewise the helper. A mutant's line stands for its statement: a
Python statement (a compound one's header), a shell command continued over lines. A test that
fails while traced is taken to reach every line. The map is kept in <scratch>/hosts-coverage.json
while the pieces, local/, the tests' fixtures and the tracing stay the same; a test module that
changed has its tests traced again. A mutant on a line no test
executes survives without a run: that is a finding, not a shortcut (no test reaches the line).

The baseline: instead of every test once on the unmutated copy, every killing test is run once on
the unmutated copy before its kill is believed: a test that fails there too (red, or flaky) makes
that outcome an error, not a kill. A survivor needs no baseline (nothing failed). `__enter__`
checks that the copy regenerates to the committed template, so the copy is the code under test.

Measured on this machine (2 cores shared with other engineers' runs, load 7-10), 2026-12-06:
before, a mutant killed by a test that already killed one took 25-35 s (pytest's start and two
database starts around the test), a survivor its piece's whole subset (6-8 min), several hours in
all. Now the coverage pass of secret.py's 131 candidate tests takes 6 min, once (the map is kept;
MySQL's tests are traced when mysql.sh comes); a mutant killed by a test of the helper in-process
takes about 1 s, one killed by a test that runs documents 3-25 s; secret.py's 110 mutants ran in
3 min and postgres.py's 20 in 1.5 min. What still costs: a survivor on a line every test executes
runs them all (the secret's parsing: 3-4 min), which is why those lines now have tests in-process;
the shell pieces are killed by document tests only (10-30 s each).
"""

from __future__ import annotations

import ast
import difflib
import fcntl
import hashlib
import inspect
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ops import template
from ops.mutate.core import REPO, STATE, Mutant, Outcome

NAME = "hosts"

PYTHON_PIECES = ["hosts/linux/secret.py", "hosts/linux/postgres.py", "hosts/linux/mysql.py"]
SHELL_PIECES = ["hosts/linux/prologue.sh", "hosts/linux/flow.sh", "hosts/linux/postgres.sh", "hosts/linux/mysql.sh"]
# What `python3 -m ops.template` writes from the pieces, put back with them after each mutant.
GENERATED = [str(path.relative_to(template.REPO)) for path in (template.OUTPUT, template.SWIFT_OUTPUT)]
TIMEOUT_SECONDS = 1800

_LINUX = "pytests/hosts/test_linux_scripts.py"
# Run first (-x stops at the first failure): a set and a verify of each kind, which most mutants break.
FIRST = ["test_set_changes_the_password_then_is_idempotent", "test_set_exits_5_when_the_changed_password_is_still_refused",
         "test_verify_reports_a_refused_password", "test_set_for_a_missing_login_exits_3_and_creates_nothing"]
_POSTGRES = ["-k", "not mysql and not mariadb", _LINUX, "pytests/hosts/test_alternating_users.py",
             "pytests/hosts/test_secret_attacks.py", "pytests/hosts/test_postgres_attacks.py",
             "pytests/hosts/test_hostile_identifiers.py", "pytests/hosts/test_postgres_saslprep.py"]
_MYSQL = ["-k", "not postgres", _LINUX, "pytests/hosts/test_alternating_users.py", "pytests/hosts/test_secret_attacks.py",
          "pytests/hosts/test_mysql_attacks.py", "pytests/hosts/test_hostile_identifiers.py"]
# piece -> the pytest selection of the tests that cover it
COVERAGE = {
    "hosts/linux/secret.py": _POSTGRES + ["pytests/hosts/test_secret_cases.py", "pytests/hosts/test_secret_boundaries.py"],
    "hosts/linux/postgres.py": _POSTGRES,
    "hosts/linux/mysql.py": _MYSQL + ["pytests/hosts/test_secret_boundaries.py"],
    "hosts/linux/prologue.sh": _POSTGRES + ["pytests/hosts/test_template_and_runner.py"],
    "hosts/linux/flow.sh": _POSTGRES,
    "hosts/linux/postgres.sh": _POSTGRES,
    "hosts/linux/mysql.sh": _MYSQL,
}


def targets() -> list[str]:
    return PYTHON_PIECES + SHELL_PIECES


def mutants(path: str) -> list[Mutant]:
    text = (REPO / path).read_text(encoding="utf-8")
    found = python_mutants(path, text) if path.endswith(".py") else shell_mutants(path, text)
    return sorted(set(found), key=lambda m: (m.line, _column(text, m), m.original, m.replacement, m.operator))


def _column(text: str, mutant: Mutant) -> int:
    line = text.split("\n")[mutant.line - 1]
    start = -1
    for _ in range(mutant.occurrence + 1):
        start = line.find(mutant.original, start + 1)
    return start


def _mutant(path: str, lines: list[str], line: int, column: int, original: str, replacement: str,
            operator: str) -> Mutant | None:
    """The mutant replacing `original`, which starts at `column` (characters) of 1-based `line`."""
    text = lines[line - 1]
    if text[column:column + len(original)] != original:
        return None
    occurrence, start = 0, text.find(original)
    while start != column:
        occurrence, start = occurrence + 1, text.find(original, start + 1)
    return Mutant(path, line, occurrence, original, replacement, operator)


# ---- Python -------------------------------------------------------------------------------------

EXIT_CODE_SWAP = {2: 6, 3: 6, 4: 6, 5: 6, 6: 4, 7: 6, 8: 4}
STAGE_SWAP = {"AWSPENDING": "AWSCURRENT", "AWSCURRENT": "AWSPENDING"}
_COMPARISONS = {
    ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"),
    ast.Gt: (">", ">="), ast.GtE: (">=", ">"), ast.In: ("in", "not in"), ast.NotIn: ("not in", "in"),
    ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is"),
}
_TOKEN = {"and": r"\band\b", "or": r"\bor\b", "in": r"\bin\b", "not in": r"\bnot\s+in\b",
          "is": r"\bis\b(?!\s+not\b)", "is not": r"\bis\s+not\b"}


def python_mutants(path: str, text: str) -> list[Mutant]:
    lines = text.split("\n")
    encoded = [line.encode("utf-8") for line in lines]

    def column(line: int, offset: int) -> int:  # ast offsets count UTF-8 bytes
        return len(encoded[line - 1][:offset].decode("utf-8"))

    out: list[Mutant | None] = []

    def token_between(start: ast.AST, end: ast.AST, token: str) -> tuple[int, int] | None:
        """Where `token` (text or a regex of _TOKEN) stands between two nodes, on one line."""
        pattern = _TOKEN.get(token, re.escape(token))
        if start.end_lineno == end.lineno:
            first, last = column(start.end_lineno, start.end_col_offset), column(end.lineno, end.col_offset)
            match = re.search(pattern, lines[end.lineno - 1][first:last])
            return (end.lineno, first + match.start()) if match else None
        match = re.search(pattern, lines[start.end_lineno - 1][column(start.end_lineno, start.end_col_offset):])
        if match:
            return start.end_lineno, column(start.end_lineno, start.end_col_offset) + match.start()
        match = re.search(pattern, lines[end.lineno - 1][:column(end.lineno, end.col_offset)])
        return (end.lineno, match.start()) if match else None

    def at(node: ast.AST, original: str, replacement: str, operator: str, skip: int = 0) -> None:
        out.append(_mutant(path, lines, node.lineno, column(node.lineno, node.col_offset) + skip, original, replacement,
                           operator))

    def source(node: ast.AST) -> str:
        return ast.get_source_segment(text, node) or ""

    for node in ast.walk(ast.parse(text, filename=path)):
        if isinstance(node, ast.Compare):
            for index, op in enumerate(node.ops):
                original, replacement = _COMPARISONS[type(op)]
                left = node.left if index == 0 else node.comparators[index - 1]
                where = token_between(left, node.comparators[index], original)
                if where:
                    matched = re.match(_TOKEN.get(original, re.escape(original)), lines[where[0] - 1][where[1]:])
                    out.append(_mutant(path, lines, where[0], where[1], matched.group(0), replacement,
                                       f"comparison: {original} to {replacement}"))
        elif isinstance(node, ast.BoolOp):
            original, replacement = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            for left, right in zip(node.values, node.values[1:], strict=False):
                where = token_between(left, right, original)
                if where:
                    out.append(_mutant(path, lines, where[0], where[1], original, replacement,
                                       f"boolean: {original} to {replacement}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            at(node, "not ", "", "remove not")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            at(node, str(node.value), str(not node.value), f"constant: {node.value} to {not node.value}")
        elif isinstance(node, ast.Constant) and node.value in STAGE_SWAP and source(node)[1:-1] == node.value:
            at(node, node.value, STAGE_SWAP[node.value], "stage name swapped", skip=1)  # after the quote
        elif isinstance(node, (ast.Return, ast.Raise, ast.Continue, ast.Break)) and node.lineno == node.end_lineno:
            at(node, source(node), "pass", f"remove {type(node).__name__.lower()}")
        elif isinstance(node, ast.Expr) and _exit_call(node.value):
            if node.lineno == node.end_lineno:
                at(node, source(node), "pass", "remove exit call")
            else:
                name = source(node.value.func)
                at(node, name + "(", "(", "remove exit call")
        if isinstance(node, ast.Call) and _exit_call(node) and node.args:
            code = node.args[0]
            if isinstance(code, ast.Constant) and code.value in EXIT_CODE_SWAP and source(code) == str(code.value):
                at(code, str(code.value), str(EXIT_CODE_SWAP[code.value]), "exit code swapped")
    # integer constants that bound a comparison or a slice, one more and one less
    for node in ast.walk(ast.parse(text, filename=path)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif isinstance(node, ast.Slice):
            operands = [n for n in (node.lower, node.upper) if n is not None]
        else:
            continue
        for operand in operands:
            if isinstance(operand, ast.Constant) and type(operand.value) is int and source(operand) == str(operand.value):
                for delta in (1, -1):
                    if delta != _same_as_boundary_moved(node, operand):
                        at(operand, str(operand.value), str(operand.value + delta), f"bound: {delta:+d}")
    return [m for m in out if m is not None]


# On integers, moving a comparison's boundary (`n < 5` to `n <= 5`) is the same bug as one of its
# constant's bound mutants (`n < 6`): that one is not made. op -> the delta that repeats it, with the
# constant on the right; on the left it is the other one (`5 < n` to `5 <= n` is `4 < n`).
_BOUNDARY_DELTA = {ast.Lt: 1, ast.LtE: -1, ast.Gt: -1, ast.GtE: 1}


def _same_as_boundary_moved(node: ast.AST, operand: ast.AST) -> int | None:
    if not isinstance(node, ast.Compare) or len(node.ops) != 1 or type(node.ops[0]) not in _BOUNDARY_DELTA:
        return None
    delta = _BOUNDARY_DELTA[type(node.ops[0])]
    return delta if operand is node.comparators[0] else -delta


def _exit_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "die") or (
        isinstance(func, ast.Attribute) and func.attr == "exit" and isinstance(func.value, ast.Name) and func.value.id == "sys")


# ---- shell --------------------------------------------------------------------------------------

_SHELL_RULES = [
    # (regex on the code outside quotes, replacement of group 1, operator)
    (re.compile(r"(?:^|[\s;|&{(])(fail|exit)(?= [1-9])"), "true", "remove guard: {0}"),
    (re.compile(r"(?:^|[\s;|&{(])(?:fail|exit) ([1-9])\b"), None, "exit code swapped"),
    (re.compile(r"(?:^|[\s;|&{(])return ([0-3])\b"), None, "return status changed"),
    (re.compile(r"\s(-eq|-ne|-lt|-le|-gt|-ge)\s"), None, "comparison: {0} to {1}"),
    (re.compile(r"\[ .*?\s(!?=)\s.*? \]"), None, "comparison: {0} to {1}"),
    (re.compile(r"(?:^|[\s\[(])(! )"), "", "remove !"),
    # not before a guard (`x || fail ...`): removing the guard is that mutant already
    (re.compile(r"(&&|\|\|)(?! (?:fail|verify_failed|exit) )"), None, "boolean: {0} to {1}"),
    (re.compile(r"\[\[? (-z|-n) "), None, "test: {0} to {1}"),
]
_SWAP = {"-eq": "-ne", "-ne": "-eq", "-lt": "-le", "-le": "-lt", "-gt": "-ge", "-ge": "-gt", "=": "!=", "!=": "=",
         "&&": "||", "||": "&&", "-z": "-n", "-n": "-z"}
_RETURN_SWAP = {"0": "1", "1": "2", "2": "1", "3": "1"}
_DEFINITION = re.compile(r"^([a-z_][a-z0-9_]*)\(\) \{", re.MULTILINE)


def _code_mask(line: str) -> str:
    """The line with everything inside quotes and after a comment blanked (same length), so the
    rules see only code. Approximate (no nested $( ) inside quotes), which is enough here."""
    out, quote, index = [], "", 0
    while index < len(line):
        char = line[index]
        if quote == "'":
            out.append(" ")
            if char == "'":
                quote = ""
        elif quote == '"':
            if char == "\\" and index + 1 < len(line):
                out.append("  ")
                index += 2
                continue
            out.append(" ")
            if char == '"':
                quote = ""
        elif char in "'\"":
            quote = char
            out.append(" ")
        elif char == "#" and (index == 0 or line[index - 1] in " \t;"):
            out.append(" " * (len(line) - index))
            break
        elif char == "\\" and index + 1 < len(line):
            out.append("  ")
            index += 2
            continue
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _functions() -> list[str]:
    """The functions the shell pieces define (read from all of them: flow.sh calls the engine's)."""
    names: set[str] = set()
    for piece in SHELL_PIECES:
        names.update(_DEFINITION.findall((REPO / piece).read_text(encoding="utf-8")))
    return sorted(names)


def shell_mutants(path: str, text: str) -> list[Mutant]:
    lines = text.split("\n")
    own = [name for name in _functions() if name != "fail"]  # a `fail` is a guard, removed by its own rule
    calls = re.compile(r"^\s*(?:(?:%s)\b|\[ .* \] (?:\|\||&&) )" % "|".join(own))
    out: list[Mutant | None] = []
    heredoc = ""
    continued = False
    for number, line in enumerate(lines, start=1):
        if heredoc:
            if line.strip() == heredoc:
                heredoc = ""
            continue
        starts_heredoc = re.search(r"<<-?'?([A-Z]+)'?", line)
        code = _code_mask(line)
        if not code.strip():
            continued = False
            continue
        for rule, replacement, operator in _SHELL_RULES:
            for match in rule.finditer(code):
                original = match.group(1)
                start = match.start(1)
                if replacement is not None:
                    new = replacement
                elif operator == "exit code swapped":
                    new = str(EXIT_CODE_SWAP[int(original)])
                elif operator == "return status changed":
                    new = _RETURN_SWAP[original]
                else:
                    new = _SWAP[original]
                # a whole-word edit: `fail 4` -> `fail 6`, the keyword itself for the guard
                out.append(_mutant(path, lines, number, start, line[start:start + len(original)], new,
                                   operator.format(original, new)))
        stripped = line.strip()
        complete = not continued and not re.search(r"(\\|\||&&|\{|\(|then|do|;)\s*$", code.rstrip())
        if complete and calls.match(code) and not _DEFINITION.match(stripped):
            out.append(_mutant(path, lines, number, line.index(stripped), stripped, ":", "remove command"))
        continued = bool(re.search(r"(\\|\||&&)\s*$", code.rstrip()))
        if starts_heredoc:
            heredoc = starts_heredoc.group(1)
    return [m for m in out if m is not None]


# ---- the mutants `make test` runs -----------------------------------------------------------------


def short_mutants() -> list[tuple[Mutant, str]]:
    """Issue 14's sixth bug (the verify after change_password removed, single user) and a secret.py
    guard (a version to set that is no longer AWSPENDING or AWSCURRENT is refused)."""
    flow = (REPO / "hosts/linux/flow.sh").read_text(encoding="utf-8").split("\n")
    # the last `verify || status=$?` of flow.sh is the single-user set's, after change_password
    verify_line = max(i for i, line in enumerate(flow, start=1) if line.strip() == "verify || status=$?")
    chosen = [m for m in mutants("hosts/linux/flow.sh") if m.line == verify_line and m.operator == "remove command"]
    secret = (REPO / "hosts/linux/secret.py").read_text(encoding="utf-8").split("\n")
    stage_line = next(i for i, line in enumerate(secret, start=1) if '"AWSPENDING" not in stages' in line)
    # `... and "AWSPENDING" not in stages and "AWSCURRENT" not in stages`: the second `and` made `or`
    chosen += [m for m in mutants("hosts/linux/secret.py")
               if m.line == stage_line and m.operator == "boolean: and to or" and m.occurrence == 1]
    return [(mutant, "killed") for mutant in chosen]


# ---- the coverage pass: which tests execute which line of each piece ------------------------------

# The documents' bash, traced: line 1 of prologue.sh (a comment) becomes this in the scratch copy while
# the tests are traced, so no other line moves. In bash it keeps a copy of the script (to tell which
# document it is), sends xtrace with the line number to its own file, and runs the python3 helpers
# under TRACER. Under sh (the agent's start, which re-executes the script under bash from line 1, or
# a host without bash) it keeps the copy and marks the line that re-executes the script, the one
# line sh runs; with builtins only, as some tests run it with tools missing from PATH.
_TRACE_PROLOGUE = ("if [ -n \"${BASH_VERSION:-}\" ]; then printf '%%s\\n' \"$(<\"$0\")\" >%(dir)s/doc.$$; exec 19>>%(dir)s/sh.$$;"
                   " BASH_XTRACEFD=19; PS4='+@L${LINENO}@ '; python3() { command python3 -I %(dir)s/tracer.py \"$@\"; };"
                   " set -x; else n=0; while IFS= read -r l || [ -n \"$l\" ]; do n=$((n + 1)); printf '%%s\\n' \"$l\";"
                   " case $l in *'exec bash \"$0\"'*) printf '+@L%%s@ \\n' \"$n\" >>%(dir)s/sh.$$;; esac; done <\"$0\" >%(dir)s/doc.$$; fi")
_TRACED_LINE = re.compile(r"^\++@L(\d+)@ ", re.MULTILINE)
# The helper (`python3 -I -c "$helper" ...`) run with a line tracer: the lines of the helper it
# executes go, as they are first met, to py.<the helper's digest>.<pid> (written at once, because
# exec-with-credential replaces the process). The digest is of the text without its last newline,
# which the shell's $(cat <<'PY' ...) drops.
_TRACER = """import hashlib, os, sys
if sys.argv[1:3] != ["-I", "-c"]:
    os.execvp("python3", ["python3"] + sys.argv[1:])
helper = sys.argv[3]
sys.argv = ["-c"] + sys.argv[4:]
name = "py.%s.%d" % (hashlib.sha256(helper.rstrip("\\n").encode()).hexdigest()[:16], os.getpid())
out = os.open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
seen = set()
def line(frame, event, arg):
    if event == "line" and frame.f_lineno not in seen:
        seen.add(frame.f_lineno)
        os.write(out, b"%d\\n" % frame.f_lineno)
    return line
sys.settrace(lambda frame, event, arg: line if frame.f_code.co_filename == "<string>" else None)
exec(compile(helper, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
"""
_ENGINE_DOCUMENTS = {"PostgresRotationDocument": "postgres", "MySQLRotationDocument": "mysql"}


def clear_traces(directory: str) -> None:
    """Leave only the tracer: the traces of the last test hold what xtrace printed (test passwords among it)."""
    for name in os.listdir(directory):
        if name != "tracer.py":
            os.unlink(os.path.join(directory, name))


def _align(target: list[str], sources: list[tuple[str, list[str]]]) -> dict[int, tuple[str, int]]:
    """1-based line of `target` -> (piece, 1-based line) for the lines `target` took unchanged from the
    sources joined in order (the documents and helpers are the pieces joined, with lines added and dropped)."""
    tagged = [(piece, number) for piece, lines in sources for number in range(1, len(lines) + 1)]
    flat = [line.rstrip() for _, lines in sources for line in lines]
    matcher = difflib.SequenceMatcher(None, [line.rstrip() for line in target], flat, autojunk=False)
    return {block.a + k + 1: tagged[block.b + k] for block in matcher.get_matching_blocks() for k in range(block.size)}


_ALIGNED: dict[tuple[str, str], dict[int, tuple[str, int]]] = {}


def _aligned(root: str, engine: str, kind: str, text: str) -> dict[int, tuple[str, int]]:
    key = (hashlib.sha256(text.encode()).hexdigest(), kind)
    if key not in _ALIGNED:
        names = ([f"hosts/linux/{name}" for name in ("prologue.sh", f"{engine}.sh", "flow.sh")] if kind == "shell"
                 else [f"hosts/linux/{name}" for name in ("secret.py", f"{engine}.py")])
        sources = [(name, Path(root, name).read_text(encoding="utf-8").split("\n")) for name in names]
        _ALIGNED[key] = _align(text.split("\n"), sources)
    return _ALIGNED[key]


def read_traces(directory: str, root: str, documents: dict, in_process: dict[str, list[int]]) -> dict[str, list[int]]:
    """piece -> the lines of it the last test executed: bash's xtrace of each document run, the
    helpers' traces, and `in_process` (the pieces the test imported and called itself)."""
    from local.ssm_runner import shell_script

    documents_by_text = {shell_script(documents[name]).rstrip("\n"): engine
                         for name, engine in _ENGINE_DOCUMENTS.items() if name in documents}
    helpers = {hashlib.sha256(template.python_helper(Path(root, "hosts/linux"), ["secret.py", f"{engine}.py"]).rstrip("\n")
                              .encode()).hexdigest()[:16]: engine for engine in ("postgres", "mysql")}
    found: dict[str, set[int]] = {piece: set(lines) for piece, lines in in_process.items()}
    for name in os.listdir(directory):
        kind, _, rest = name.partition(".")
        if kind == "sh":
            copy = Path(directory, "doc." + rest)
            engine = documents_by_text.get(copy.read_text(encoding="utf-8").rstrip("\n")) if copy.exists() else None
            if engine is None:  # not one of the engines' documents (a test's own script)
                continue
            where = _aligned(root, engine, "shell", next(text for text, known in documents_by_text.items() if known == engine))
            numbers = (int(n) for n in _TRACED_LINE.findall(Path(directory, name).read_text(encoding="utf-8", errors="replace")))
        elif kind == "py":
            digest = rest.split(".")[0]
            if digest not in helpers:
                continue
            engine = helpers[digest]
            helper = template.python_helper(Path(root, "hosts/linux"), ["secret.py", f"{engine}.py"])
            where = _aligned(root, engine, "python", helper)
            numbers = (int(n) for n in Path(directory, name).read_text(encoding="utf-8").split())
        else:
            continue
        for number in numbers:
            if number in where:
                piece, line = where[number]
                found.setdefault(piece, set()).add(line)
    return {piece: sorted(lines) for piece, lines in found.items()}


class InProcessTracer:
    """Lines of the Python pieces run inside the test process (tests that import secret, mysql...)."""

    def __init__(self, root: str):
        self.pieces = {os.path.realpath(os.path.join(root, piece)): piece for piece in PYTHON_PIECES}
        self.names: dict[str, str | None] = {}
        self.lines: dict[str, set[int]] = {}

    def __enter__(self) -> InProcessTracer:
        self.lines = {}
        sys.settrace(self._call)
        threading.settrace(self._call)
        return self

    def __exit__(self, *exc_info) -> None:
        sys.settrace(None)
        threading.settrace(None)

    def _call(self, frame, event, arg):
        filename = frame.f_code.co_filename
        if filename not in self.names:
            self.names[filename] = self.pieces.get(os.path.realpath(filename))
        piece = self.names[filename]
        if piece is None:
            return None
        seen = self.lines.setdefault(piece, set())

        def line(frame, event, arg):
            if event == "line":
                seen.add(frame.f_lineno)
            return line
        return line

    def take(self) -> dict[str, list[int]]:
        return {piece: sorted(lines) for piece, lines in self.lines.items()}


def line_groups(path: str, text: str) -> dict[int, range]:
    """1-based line -> the lines of the one statement it is part of (a test that executes any of them
    reaches the mutant): for Python the statement, a compound one's header only; for the shell the
    command continued over lines (a trailing \\, |, || or &&, or a next line starting with one, or
    a parenthesis still open: bash's trace gives every command inside a `$( ... )` that spans lines
    the line where it closes, so flow.sh's `secret_lines=$({ aws ... } | python3 ...)` is one)."""
    groups: dict[int, range] = {}
    if path.endswith(".py"):
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.stmt):
                continue
            body = getattr(node, "body", None)
            end = body[0].lineno - 1 if isinstance(body, list) and body and isinstance(body[0], ast.stmt) else node.end_lineno
            span = range(node.lineno, max(end, node.lineno) + 1)
            for number in span:
                if number not in groups or len(span) < len(groups[number]):
                    groups[number] = span
        return groups
    lines = text.split("\n")
    start, depth = 1, 0
    for number, line in enumerate(lines, start=1):
        code = _code_mask(line).rstrip()
        for char in code:
            # A `)` with none open is a case pattern's, not a closing one.
            depth += 1 if char == "(" else -1 if char == ")" and depth else 0
        following = _code_mask(lines[number]).lstrip() if number < len(lines) else ""
        if depth or re.search(r"(\\|\||&&)$", code) or following.startswith(("||", "&&", "|")):
            continue
        for member in range(start, number + 1):
            groups[member] = range(start, number + 1)
        start = number + 1
    return groups


def _coverage_digest(root: Path) -> str:
    """What the whole coverage map depends on: the pieces, what runs the tests (conftest, support,
    local/, the template), and how they are traced (not the rest of this file, so the mutants' rules
    can change and the map stay). A test module is _test_file_digest's: a changed one is traced again."""
    digest = hashlib.sha256()
    for pattern in ("hosts/linux/*", "pytests/hosts/*.py", "local/*.py", "template.in.yaml", "ops/template.py"):
        for path in sorted(path for path in root.glob(pattern) if path.is_file() and not path.name.startswith("test_")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    for part in (_TRACE_PROLOGUE, _TRACER, inspect.getsource(read_traces), inspect.getsource(_align),
                 inspect.getsource(InProcessTracer)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _test_file_digest(root: Path, test: str) -> str:
    return hashlib.sha256((root / test.split("::")[0]).read_bytes()).hexdigest()


# ---- running them ---------------------------------------------------------------------------------


def _repository_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode("utf-8")
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


_FAILED = re.compile(r"^(?:FAILED|ERROR) (.+)$", re.MULTILINE)


def first_failure(output: str, tests: list[str]) -> str | None:
    """The node id of the first FAILED or ERROR line of pytest's -rfE summary. The line is the id,
    then " - " and the message, and a parametrized id may hold spaces and " - " itself: the
    longest of the tests run that the line starts with is the one."""
    for match in _FAILED.finditer(output):
        line = match.group(1)
        known = [t for t in tests if line == t or line.startswith(t + " - ")]
        if known:
            return max(known, key=len)
    return None


def _earlier_killers(state: Path) -> dict[str, str]:
    """Mutant key -> the test that killed it last, from the outcomes recorded so far (python3 -m
    ops.mutate's state file): only an order to try the tests in, so a missing file is no history."""
    killers: dict[str, str] = {}
    if state.exists():
        for line in state.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else {}
            if record.get("kind") == "outcome" and record.get("status") == "killed" and "::" in record.get("killer", ""):
                killers[record["key"]] = record["killer"]
    return killers


class Session:
    """A scratch copy of the repository where mutants are applied, one at a time (see the module)."""

    def __init__(self, scratch: Path, log: Callable[[str], None]):
        self.scratch = Path(scratch).resolve()  # absolute: the traced scripts write there after their `cd /`
        self.root = self.scratch / NAME
        self.log = log
        self.saved: dict[str, bytes] = {}
        self.green: set[str] = set()  # killing tests seen passing on the unmutated copy
        self.selections: dict[str, list[str]] = {}  # piece -> the node ids of its tests, FIRST's first
        self.killers: list[str] = []  # the tests that killed mutants, the latest first
        self.line_killers: dict[tuple[str, int], str] = {}  # (piece, line) -> the test that last killed a mutant there
        self.earlier_killers = _earlier_killers(STATE)  # mutant key -> the test that killed it in an earlier run
        # test -> piece -> the lines it executes; only for the pieces begin_file was called for
        self.coverage: dict[str, dict[str, list[int]]] = {}
        self.traced: set[str] = set()  # the pieces whose mutants get only the tests that reach their line
        self.seconds: dict[str, float] = {}  # test -> how long it took when it last ran
        self.worker: subprocess.Popen | None = None
        self.died = False  # the last request found the worker gone (not late)

    @property
    def coverage_file(self) -> Path:
        return self.scratch / "hosts-coverage.json"

    def __enter__(self) -> Session:
        self.scratch.mkdir(parents=True, exist_ok=True)
        # Two runs in one scratch copy would remove and mutate each other's files: the second one stops.
        self.lock = (self.scratch / "hosts.lock").open("w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.close()
            raise RuntimeError(f"another mutation run is using {self.root}; wait for it to end") from None
        if self.root.exists():
            shutil.rmtree(self.root)
        for name in _repository_files():
            target = self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target)
        for name in targets() + GENERATED:
            self.saved[name] = (self.root / name).read_bytes()
        check = self._template(check=True)
        if check.returncode != 0:
            raise RuntimeError("the scratch copy does not regenerate to its own template.yaml:\n" + check.stdout + check.stderr)
        self.log(f"hosts: scratch copy at {self.root}")
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._stop_worker()
        finally:
            try:
                self._restore()
            finally:
                self.lock.close()

    def _restore(self) -> None:
        for name, data in self.saved.items():
            (self.root / name).write_bytes(data)

    def _template(self, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ops.template"] + (["--check"] if check else []), cwd=self.root,
                              capture_output=True, text=True)

    # ---- the coverage map

    def begin_file(self, path: str) -> None:
        """Called by the driver before a file's mutants: trace the file's tests not yet traced (the
        map is kept in the scratch directory while what it depends on stays the same), and from now
        on give each mutant of the file only the tests that execute its line."""
        digest = _coverage_digest(self.root)
        if not self.coverage and self.coverage_file.exists():
            kept = json.loads(self.coverage_file.read_text(encoding="utf-8"))
            if kept.get("digest") == digest:
                self.coverage = {test: lines for test, lines in kept["tests"].items()
                                 if (self.root / test.split("::")[0]).is_file()
                                 and kept["files"].get(test) == _test_file_digest(self.root, test)}
                self.seconds.update(kept.get("seconds", {}))
        missing = [test for test in self.selection(path) if test not in self.coverage]
        if missing:
            started = time.monotonic()
            self.log(f"hosts: tracing {len(missing)} tests of {path} on the unmutated copy")
            self.coverage.update(self._trace(missing))
            files = {test: _test_file_digest(self.root, test) for test in self.coverage}
            self.coverage_file.write_text(json.dumps({"digest": digest, "files": files, "tests": self.coverage,
                                                      "seconds": self.seconds}), encoding="utf-8")
            self.log(f"hosts: traced in {time.monotonic() - started:.0f}s")
        self.traced.add(path)

    def _trace(self, tests: list[str]) -> dict[str, dict[str, list[int]]]:
        directory = self.scratch / "hosts-trace"
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(mode=0o700)
        (directory / "tracer.py").write_text(_TRACER, encoding="utf-8")
        prologue = self.root / "hosts/linux/prologue.sh"
        lines = self.saved["hosts/linux/prologue.sh"].decode("utf-8").split("\n")
        if not lines[0].startswith("#"):
            raise RuntimeError("prologue.sh's first line is no longer a comment: the trace line would move the others")
        try:
            prologue.write_text("\n".join([_TRACE_PROLOGUE % {"dir": directory}] + lines[1:]), encoding="utf-8")
            if self._template().returncode != 0:
                raise RuntimeError("the traced prologue does not make a template")
            answer = self._ask({"tests": tests, "trace": str(directory)}, timeout=TIMEOUT_SECONDS + 120 * len(tests))
        finally:
            self._restore()
            shutil.rmtree(directory, ignore_errors=True)
        if answer is None:
            raise RuntimeError("the test session died or hung while the tests were traced")
        traced = answer["lines"]
        self.seconds.update(answer["seconds"])
        for test in answer["failed"]:
            # A test that fails traced may have stopped early: it is taken to reach every line.
            self.log(f"hosts: {test} failed while traced: it is run for every mutant of its pieces")
            traced[test] = {"*": []}
        return traced

    def tests_for(self, mutant: Mutant) -> list[str]:
        """The piece's tests that execute the mutated statement (all of them before begin_file)."""
        selected = self.selection(mutant.path)
        if mutant.path not in self.traced:
            return selected
        group = line_groups(mutant.path, self.saved[mutant.path].decode("utf-8")).get(mutant.line, range(mutant.line, mutant.line + 1))
        return [test for test in selected
                if "*" in self.coverage[test] or set(group) & set(self.coverage[test].get(mutant.path, ()))]

    # ---- one mutant

    def run(self, mutant: Mutant) -> Outcome:
        started = time.monotonic()
        try:
            piece = self.root / mutant.path
            mutated = mutant.apply(self.saved[mutant.path].decode("utf-8"))
            if not self._parses(mutant.path, mutated):
                return Outcome(mutant, "unbuildable", seconds=time.monotonic() - started)
            piece.write_text(mutated, encoding="utf-8")
            generated = self._template()
            if generated.returncode != 0:
                return Outcome(mutant, "unbuildable", reason=(generated.stderr.strip().splitlines() or [""])[-1],
                               seconds=time.monotonic() - started)
            if (self.root / "template.yaml").read_bytes() == self.saved["template.yaml"]:
                return Outcome(mutant, "error", reason="the template did not change", seconds=time.monotonic() - started)
            tests = self._ordered(self.tests_for(mutant), mutant)
            if not tests:
                return Outcome(mutant, "survived", reason="no test executes this line", seconds=time.monotonic() - started)
            try:
                killer = self._pytest(tests)
            except RuntimeError as error:
                return Outcome(mutant, "error", reason=str(error), seconds=time.monotonic() - started)
            self._restore()
            if killer is None:
                return Outcome(mutant, "survived", seconds=time.monotonic() - started)
            if killer != "timeout" and killer not in self.green:
                if self._pytest([killer]) is not None:
                    return Outcome(mutant, "error", reason=f"{killer} fails on the unmutated copy too",
                                   seconds=time.monotonic() - started)
                self.green.add(killer)
            if killer in self.killers:
                self.killers.remove(killer)
            self.killers.insert(0, killer)
            self.line_killers[(mutant.path, mutant.line)] = killer
            return Outcome(mutant, "killed", killer=killer, seconds=time.monotonic() - started)
        finally:
            self._restore()

    def selection(self, path: str) -> list[str]:
        """The node ids COVERAGE[path] selects, FIRST's tests first (pytest keeps the order of node ids
        given one by one, but merges a file given with one of its tests into file order)."""
        if path not in self.selections:
            listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                     *COVERAGE[path]], cwd=self.root, capture_output=True, text=True)
            ids = [line for line in listed.stdout.splitlines() if line.startswith("pytests/") and "::" in line]
            if listed.returncode != 0 or not ids:
                raise RuntimeError(f"the tests of {path} cannot be collected:\n{listed.stdout[-2000:]}{listed.stderr[-2000:]}")
            rank = {name: index for index, name in enumerate(FIRST)}
            self.selections[path] = sorted(ids, key=lambda i: rank.get(i.split("::")[1].split("[")[0], len(FIRST)))
        return self.selections[path]

    def _ordered(self, selected: list[str], mutant: Mutant) -> list[str]:
        """The tests, likely killers first, since a run stops at the first failure and a killed mutant
        then costs one test, not dozens: the test that killed this very mutant in an earlier run (a
        rerun of a file after a test was added), then the one that last killed a mutant of the same
        line, then those that killed mutants (the latest first: neighbouring mutants tend to fall to
        the same test); then the quickest first (a test of the helper in-process takes milliseconds,
        one that runs documents seconds). The order decides only which failing test is named and how
        soon, never whether the mutant is killed: every selected test runs until one fails."""
        likely = [self.earlier_killers.get(mutant.key), self.line_killers.get((mutant.path, mutant.line)), *self.killers]
        first = list(dict.fromkeys(test for test in likely if test in selected))
        rest = [test for test in selected if test not in first]
        return first + sorted(rest, key=self._cost)

    def _cost(self, test: str) -> float:
        """Seconds the test took when it last ran; before it ever ran, a guess from what it executes."""
        if test in self.seconds:
            return self.seconds[test]
        pieces = self.coverage.get(test, {"*": []})
        return 5.0 if "*" in pieces or any(piece.endswith(".sh") for piece in pieces) else 0.1

    @staticmethod
    def _parses(path: str, text: str) -> bool:
        if path.endswith(".py"):
            try:
                ast.parse(text)
            except SyntaxError:
                return False
            return True
        return subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True).returncode == 0

    # ---- the test session that stays up (ops/mutate/hosts_worker.py)

    def _pytest(self, tests: list[str]) -> str | None:
        """The first failing test of `tests` (or "timeout"), None when all pass; RuntimeError when the
        test session died (not a verdict on the mutant)."""
        answer = self._ask({"tests": tests, "trace": None}, timeout=TIMEOUT_SECONDS)
        if answer is None:
            if self.died:
                raise RuntimeError(f"the test session died (see {self.scratch / 'hosts-worker.log'})")
            return "timeout"
        self.seconds.update(answer["seconds"])
        return answer["failed"]

    def _ask(self, request: dict, timeout: float) -> dict | None:
        """The worker's answer to one request; None when it does not answer in time (a mutant that
        loops) or dies: it is stopped, and the next request starts a fresh one."""
        if self.worker is None:
            self._start_worker()
        try:
            self.worker.requests.write(json.dumps(request) + "\n")
            self.worker.requests.flush()
            line = self._answer(timeout)
        except BrokenPipeError:
            line = None
        except BaseException:
            self._stop_worker()
            raise
        if line is None:
            self.log(f"hosts: the test session did not answer (see {self.scratch / 'hosts-worker.log'}); starting another")
            self._stop_worker(busy=True)
            return None
        return json.loads(line)

    def _answer(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        buffer = self.worker.buffer
        self.died = False
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.worker.answers], [], [], remaining)[0]:
                return None
            chunk = os.read(self.worker.answers, 65536)
            if not chunk:
                self.died = True
                return None
            buffer += chunk
        line, _, self.worker.buffer = buffer.partition(b"\n")
        return line.decode("utf-8")

    def _start_worker(self) -> None:
        files = sorted({argument for arguments in COVERAGE.values() for argument in arguments if argument.startswith("pytests/")})
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        from ops.mutate.hosts_worker import ANSWERS, REQUESTS
        env = dict(os.environ, **{REQUESTS: str(requests_read), ANSWERS: str(answers_write)})
        with open(self.scratch / "hosts-worker.log", "ab") as log:
            # its own process group, with SIGINT at its default (a background shell may have ignored it)
            # so that _stop_worker can have pytest tear down and stop its databases
            process = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "ops.mutate.hosts_worker",
                                        *files], cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       pass_fds=(requests_read, answers_write), start_new_session=True,
                                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        os.close(requests_read)
        os.close(answers_write)
        process.requests = os.fdopen(requests_write, "w", encoding="utf-8")
        process.answers = answers_read
        process.buffer = b""
        self.worker = process
        ready = self._answer(600)
        if ready is None:
            self._stop_worker()
            raise RuntimeError(f"the test session did not start: see {self.scratch / 'hosts-worker.log'}")

    def _stop_worker(self, busy: bool = False) -> None:
        """Its requests closed, the worker ends its session (stopping the databases it started); when it
        is busy (or hangs), its process group gets SIGINT, so pytest still tears down."""
        process, self.worker = self.worker, None
        if process is None:
            return
        try:
            process.requests.close()
        except OSError:
            pass
        os.close(process.answers)
        try:
            process.wait(timeout=5 if busy else 60)
            return
        except subprocess.TimeoutExpired:
            pass
        self._stop(process)

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        """The pytest process group: SIGINT first, so pytest tears down and stops the databases it started."""
        for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return
