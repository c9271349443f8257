"""Mutants of the Linux host scripts (hosts/linux/), and how to test them.

What is covered: the pieces every Linux rotation document is joined from (ops/template.py): the
shell pieces prologue.sh, flow.sh, postgres.sh, mysql.sh and the python3 helpers secret.py,
postgres.py, mysql.py. hosts/windows/sqlserver.ps1 is left out: its tests that run it need
PowerShell and SQL Server, which this machine (and CI) does not have, so every mutant of it would
survive and the score would measure the machine, not the tests.

How a mutant is made (systematically, by rule, in file order; each is one edit of one line):
  Python, from the ast:  a comparison's boundary moved (< <=, > >=) or its sense flipped (== !=,
    in / not in, is / is not); `and` / `or` swapped; a `not` removed; True / False swapped; an
    integer constant +1 and -1 where it bounds a comparison or a slice; a `return`, `raise`,
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
because the tests run the documents from template.yaml; then pytest runs the tests that cover the
piece (COVERAGE below), `-x`, the tests that killed earlier mutants first, then FIRST's broad
ones, and the first failing test is the killer; then the piece and the generated files are put back. A mutant the
shell or Python cannot parse (bash -n, ast) is unbuildable. A run that outlasts TIMEOUT_SECONDS
(a mutant that loops) counts as killed by "timeout".

Which tests, and why so few: each test runs the document through the SSM runner, with two AWS CLI
calls and real databases, a few seconds each; a survivor costs its whole subset. The engine's
pieces run that engine's tests only (-k); the shared pieces (prologue.sh, flow.sh) run the
PostgreSQL document's tests only, because both documents carry the same text of them, so one
engine's run exercises every line (MySQL's own lines are mysql.sh's). The attack tests of the
other files (e2e, operations) are not in any subset: they run the same scripts far slower.

The baseline: instead of the whole subset once on the unmutated copy (many minutes per piece),
every killing test is run once on the unmutated copy before its kill is believed: a test that
fails there too (red, or flaky) makes that outcome an error, not a kill. A survivor needs no
baseline (nothing failed). `__enter__` checks that the copy regenerates to the committed
template, so the copy is the code under test.

Measured on this machine (2 cores shared, load 10-14 while measuring): a mutant killed by a test
that already killed one takes 25-35 s (pytest's start, one database, that test, the template
regenerated); one whose killer comes late in its subset 2-5 min; a survivor its whole subset, about
85 tests and 6-8 min for the PostgreSQL subset. The ~490 mutants come to several hours here, more
than the ~90 min aimed at; what would bring it down: fewer exit-code swaps (one per `fail`), a
subset per piece cut to the tests that exercise it (coverage of the shell is not measurable here).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ops import template
from ops.mutate.core import REPO, Mutant, Outcome

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
             "pytests/hosts/test_hostile_identifiers.py"]
_MYSQL = ["-k", "not postgres", _LINUX, "pytests/hosts/test_alternating_users.py", "pytests/hosts/test_secret_attacks.py",
          "pytests/hosts/test_mysql_attacks.py", "pytests/hosts/test_hostile_identifiers.py"]
# piece -> the pytest selection of the tests that cover it
COVERAGE = {
    "hosts/linux/secret.py": _POSTGRES + ["pytests/hosts/test_secret_cases.py"],
    "hosts/linux/postgres.py": _POSTGRES,
    "hosts/linux/mysql.py": _MYSQL,
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
                    at(operand, str(operand.value), str(operand.value + delta), f"bound: {delta:+d}")
    return [m for m in out if m is not None]


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


class Session:
    """A scratch copy of the repository where mutants are applied, one at a time (see the module)."""

    def __init__(self, scratch: Path, log: Callable[[str], None]):
        self.root = Path(scratch) / NAME
        self.log = log
        self.saved: dict[str, bytes] = {}
        self.green: set[str] = set()  # killing tests seen passing on the unmutated copy
        self.selections: dict[str, list[str]] = {}  # piece -> the node ids of its tests, FIRST's first
        self.killers: list[str] = []  # the tests that killed mutants, the latest first

    def __enter__(self) -> Session:
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
        self._restore()

    def _restore(self) -> None:
        for name, data in self.saved.items():
            (self.root / name).write_bytes(data)

    def _template(self, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ops.template"] + (["--check"] if check else []), cwd=self.root,
                              capture_output=True, text=True)

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
            killer = self._pytest(self._ordered(mutant.path))
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

    def _ordered(self, path: str) -> list[str]:
        """The piece's tests, those that killed mutants first (the latest first): neighbouring mutants
        tend to fall to the same test, and a killed mutant then costs one test, not dozens."""
        selected = self.selection(path)
        first = [killer for killer in self.killers if killer in selected]
        return first + [test for test in selected if test not in first]

    @staticmethod
    def _parses(path: str, text: str) -> bool:
        if path.endswith(".py"):
            try:
                ast.parse(text)
            except SyntaxError:
                return False
            return True
        return subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True).returncode == 0

    def _pytest(self, arguments: list[str]) -> str | None:
        """The first failing test of `arguments` (or "timeout"), None when all pass."""
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", *arguments]
        # its own process group, with SIGINT at its default (a background shell may have ignored it)
        # so that _stop can have pytest tear down and stop its databases
        process = subprocess.Popen(command, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            output, _ = process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._stop(process)
            return "timeout"
        except BaseException:
            self._stop(process)
            raise
        if process.returncode == 0:
            return None
        killer = first_failure(output, arguments)
        if killer:
            return killer
        raise RuntimeError(f"pytest exited {process.returncode} without a failing test:\n{output[-2000:]}")

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
